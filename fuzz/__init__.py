"""Fuzz harness of napari-elnet's input contract (issue 10).

Every input a user can hand the product gets a clear answer: ``load_study`` returns series or raises
only ``NoUsableSeriesError`` (per-file problems warn naming the file), ``load_model`` raises only
``ModelFileError``, the restricted unpickler only ``ArrayPickleError``, and the CLI exits 0 or 2 with
one line on stderr when it exits 2. No input may crash the process, hang it or grow it past 4 GB.

Modules:

- :mod:`fuzz.seeds`: small valid inputs generated with pydicom/numpy/torch, plus ``../shared/data``.
- :mod:`fuzz.mutate`: byte-level and structured mutations (DICOM tags, ``.npy`` headers, model
  payloads, pickle opcodes) and special files (FIFOs, device symlinks, deflate bombs).
- :mod:`fuzz.cases`: input number -> one case on disk, deterministic from (seed, number).
- :mod:`fuzz.worker`: a long-lived child process (everything imported once, ``RLIMIT_AS`` 4 GB) that
  runs many cases and checks the contract of each.
- :mod:`fuzz.runner`: the parent: hands numbers to workers, kills and replaces a worker whose
  current case runs past the time limit (a hang) and records a worker's death (a crash), keeping
  the input for reproduction; sums the outcomes.

Run it with ``scripts/fuzz.py``; a seeded few hundred inputs run in ``tests/fuzz/test_fuzz.py``.
"""
