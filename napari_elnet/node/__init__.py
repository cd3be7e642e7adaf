"""The DICOM node: receive studies from a scanner or PACS, triage them as they arrive, send results back.

Modules: :mod:`~napari_elnet.node.config` (AE title, address, allow list, limits),
:mod:`~napari_elnet.node.store` (atomic, UID-checked store), :mod:`~napari_elnet.node.receiver`
(C-ECHO / C-STORE SCP), :mod:`~napari_elnet.node.stability` (when a study is complete),
:mod:`~napari_elnet.node.pipeline` (triage worker, DICOM results, sending back),
:mod:`~napari_elnet.node.send` (C-STORE SCU), :mod:`~napari_elnet.node.pull` (C-FIND / C-GET),
:mod:`~napari_elnet.node.service` (all of them wired together) and
:mod:`~napari_elnet.node.events` (what the node reports). Nothing is imported here, so importing a
single module stays cheap.
"""
