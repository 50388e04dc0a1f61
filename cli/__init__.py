"""The ``snakedeck`` command, and the composition root of every snakedeck process."""
