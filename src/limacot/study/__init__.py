"""The study schema shared by `limacot run` (which writes it) and `limacot report` (which reads it):
cells and compared pairs (`cells`), the results store with its typed rows and the recorded plan
(`store`), and the record of Slurm submissions (`submissions`)."""
