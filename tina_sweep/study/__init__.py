"""Studies: a study file's axes, seeds and design, at a scale, become fully resolved trials.

- ``study``: ``Study`` (what a study file builds), ``load_study``, ``resolve`` (study x scale -> trials);
- ``scales``: the size of a run (smoke, cpu, paper).
"""
