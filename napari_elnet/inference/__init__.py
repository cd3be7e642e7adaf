"""From a study to results: FullGrad explanation, triage, export."""
