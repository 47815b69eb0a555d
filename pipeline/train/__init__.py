"""Stage 4, training: the stage (`trainer`), the epoch loop (`executor`), what is optimised (`tasks`), and where the
processes run (`runtime`)."""
