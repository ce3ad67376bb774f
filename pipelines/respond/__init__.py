"""Automated incident response: execute actions once, safely, through actuators (`twinguard respond`)."""
