"""The Vagrant box can install netwall: its record against the Vagrantfile and setup.cfg.

Pure and fast; bench/vm_report.py checks the same record against the box's real userland.
"""

from __future__ import annotations

import pytest

from bench import vm_box, vm_report
from bench.sections import splice

SETUP_CFG = (vm_box.PROJECT / "setup.cfg").read_text()


def test_vagrantfile_uses_the_recorded_box():
    vagrantfile = (vm_box.PROJECT / "Vagrantfile").read_text()
    assert vm_box.vagrant_box(vagrantfile) == vm_box.record()["box"]


def test_box_python_and_pinned_packages_satisfy_setup_cfg():
    python_requires, reqs = vm_box.requirements(SETUP_CFG)
    pins = vm_box.pinned_requires_python(reqs)
    assert "matplotlib==3.11.2" in pins and "scapy==2.8.0" in pins
    assert vm_box.refusals(vm_box.record()["python"], python_requires, pins) == []


def test_a_python_below_python_requires_is_refused():
    python_requires, reqs = vm_box.requirements(SETUP_CFG)
    pins = vm_box.pinned_requires_python(reqs)
    why = vm_box.refusals("3.10.12", python_requires, pins)  # the old Ubuntu 22.04 box
    assert why[0] == "setup.cfg's python_requires >=3.11 refuses Python 3.10.12"


def test_a_package_that_needs_a_newer_python_is_refused():
    why = vm_box.refusals("3.11.2", ">=3.11", {"numpy==9.0": ">=3.12", "old==1.0": None})
    assert why == ["numpy==9.0 requires Python >=3.12, the box has 3.11.2"]


def test_vagrantfile_must_name_one_box():
    with pytest.raises(ValueError, match="names 0 boxes"):
        vm_box.vagrant_box("Vagrant.configure('2') do |config|\nend\n")


@pytest.mark.parametrize("doc", ["labs/README.md", "docs/user-guide.md", "Vagrantfile"])
def test_docs_describe_the_recorded_box(doc):
    box = vm_box.record()
    text = (vm_box.PROJECT / doc).read_text()
    assert f"Debian {box['debian']} ({box['codename']})" in text


def test_userland_bench_runs_the_vagrantfiles_provisioning():
    script = vm_report.provisioning(vm_box.PROJECT / "Vagrantfile")
    assert "./netwall.sh install" in script and "modprobe sch_netem" in script
    assert "/etc/modules-load.d/" in script and "/usr/local/bin/netwall" in script


def test_userland_section_of_benchmarks_is_replaced_alone_and_kept():
    ours = f"{vm_report.HEADING}\n\nold\n\n"
    text = f"# b\n\n## A\n\na\n\n{ours}## B\n\nb\n"
    new = f"{vm_report.HEADING}\n\nnew\n"
    assert splice(text, [new]) == f"# b\n\n## A\n\na\n\n{new}\n## B\n\nb\n"
    assert splice("# b\n\n## A\n", [new]) == f"# b\n\n## A\n\n{new}"
