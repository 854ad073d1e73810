"""Where sharp 240 fps frames come from: the embedded ``synth`` set, and real footage
(``adobe240``, ``youtube240``, ``local``), each real source a module with a ``build`` function that
its ``fetch@<name>`` stage calls."""

from alabench.errors import UserError


class SourceError(UserError):
    """A download, crawl or video that cannot be used; the message names it and says what to do."""
