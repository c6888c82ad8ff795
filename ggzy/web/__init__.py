"""The shared web layer of the hub and the node: sign-in, sessions, CSRF, headers, base template.

See :mod:`ggzy.web.layer` for how a page is built on it.
"""

from ggzy.web.layer import PeopleWeb, caller_of, install_people_layer, people_of

__all__ = ["PeopleWeb", "caller_of", "install_people_layer", "people_of"]
