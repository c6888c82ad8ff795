"""ggzy-exchange: data exchange between provincial public resource trading platforms and the national platform."""

__version__ = "0.1.0"
