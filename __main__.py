"""Ladder: one app description, deployed on the rung the stack's config picks.

Thin on purpose: validate the config, import only the chosen rung (so a local stack
never loads the cloud SDKs), build it, export the outputs.
"""

from components.config_source import load_settings
from components.outputs import Rung, export_outputs

settings = load_settings()
rung: Rung

if settings.phase == "local":
    from components.local import LocalStack, LocalStackArgs

    rung = LocalStack(settings.app.name, LocalStackArgs(settings))
elif settings.phase == "vps":
    from components.layout_guard import guard
    from components.vps import VpsStack, VpsStackArgs

    rung = VpsStack(settings.app.name, VpsStackArgs(settings), opts=guard(settings))
else:
    from components.cluster import ClusterStack, ClusterStackArgs

    rung = ClusterStack(settings.app.name, ClusterStackArgs(settings))

export_outputs(settings, rung)
