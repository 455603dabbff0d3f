"""depth-pipeline's launchers where Hydra looks for launcher plugins (it instantiates only
classes of the ``hydra_plugins`` package): ``hydra/launcher=slurm`` and ``slurm_local``,
hydra-submitit-launcher's two launchers with ``SlicedSweep`` (pipeline/run/slurm_launcher.py)
on top. Without the slurm extra there is nothing here."""

try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher as plugin

    from pipeline.run.slurm_launcher import SlicedSweep, register
except ImportError:  # hydra-submitit-launcher not installed: conf/hydra/launcher says so
    pass
else:
    register()

    class SlurmLauncher(SlicedSweep, plugin.SlurmLauncher):
        _EXECUTOR = "slurm"

    class LocalLauncher(SlicedSweep, plugin.LocalLauncher):
        _EXECUTOR = "local"
