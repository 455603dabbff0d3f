"""Our two Hydra launchers, ``hydra/launcher=slurm`` and ``slurm_local``: the launchers of
hydra-submitit-launcher with ``SlicedSweep`` (``slurm_launcher.py``) on top.

Hydra instantiates a launcher only by a name under its ``hydra_plugins`` package, found by
scanning that namespace (``Plugins.class_name_to_class``). The repository's top level is
fixed (no ``hydra_plugins/`` beside ``pipeline/``), so ``install`` enters these classes
in Hydra's table under ``hydra_plugins.depth_pipeline_launcher.*`` (the ``_target_`` of
``conf/hydra/launcher/slurm.yaml`` and ``slurm_local.yaml``) before the command composes
its config. Jobs unpickle them from here. Without the slurm extra there is nothing to do.
"""

from __future__ import annotations

try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher as plugin

    from pipeline.cluster.slurm_launcher import PLUGIN_MODULE, SlicedSweep, register
except ImportError:  # hydra-submitit-launcher not installed: the launcher check says so
    plugin = None
else:

    class SlurmLauncher(SlicedSweep, plugin.SlurmLauncher):
        _EXECUTOR = "slurm"

    class LocalLauncher(SlicedSweep, plugin.LocalLauncher):
        _EXECUTOR = "local"


def install() -> None:
    """Register the launchers' config schemas and enter the classes in Hydra's plugin
    table (idempotent)."""
    if plugin is None:
        return
    from hydra.core.plugins import Plugins

    register()
    table = Plugins.instance().class_name_to_class
    for cls in (SlurmLauncher, LocalLauncher):
        table[f"{PLUGIN_MODULE}.{cls.__name__}"] = cls
