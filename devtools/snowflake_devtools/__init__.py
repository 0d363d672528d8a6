"""Everything that runs the pipeline on one machine: emulators, local Job backend, demo."""
