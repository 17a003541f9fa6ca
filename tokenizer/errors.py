"""The one exception type for errors a user can cause (a bad file, a bad setting)."""


class CantorError(Exception):
    """An error with a message a musician can act on, e.g. "bwv66.mid: no notes on any non-drum track".

    Raised where the problem is found, caught once at the edge (CLI or studio) and shown.
    """
