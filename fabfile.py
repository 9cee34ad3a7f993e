"""maasops: back up and restore a whole MAAS deployment over SSH.

Run `fab --list` for the runbook, `fab --help TASK` for a task's options.
Hosts come from -H (with -S ssh_config, --gateway, --prompt-for-sudo-password as
Fabric users expect), from --inventory FILE, or from the local lab.
"""

from invoke import Collection, task

from maasops import cli
from maasops.lab import tasks as lab_tasks

FLEET_HELP = {
    "inventory": "inventory YAML file (instead of -H)",
    "lab-dir": "lab directory used when neither -H nor --inventory is given (default .lab)",
    "parallel": "hosts worked on at once (default 8)",
    "accept-new-host-keys": "trust and record host keys not yet in known_hosts (default: refuse)",
    "deployment": "deployment name for -H runs (default: the inventory's, or 'default')",
}


@task(help=FLEET_HELP, post=[cli.fleet_task("probe", cli.run_probe)])
def probe(c, inventory=None, lab_dir=None, parallel=8, accept_new_host_keys=False, deployment=None):
    """1. Look at every controller (read-only): install, version, roles, database, units."""
    cli.enlist(c, "probe", inventory=inventory, lab_dir=lab_dir, parallel=parallel,
               accept_new_host_keys=accept_new_host_keys, deployment=deployment)


@task(help={"lab-dir": "where the rehearsal lab lives (default .lab-drill)",
            "keep": "leave the lab up afterwards"})
def drill(c, lab_dir=".lab-drill", keep=False):
    """9. Rehearse on the local lab: bring it up, probe every host over SSH, tear it down."""
    lab_tasks.drill(lab_dir=lab_dir, keep=keep)


ns = Collection(probe, drill)
ns.add_collection(lab_tasks.ns, name="lab")
