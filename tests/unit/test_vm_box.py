"""The Vagrant box can install netwall: its record against the Vagrantfile and setup.cfg.

Pure and fast; bench/vm_report.py checks the same record against the box's real userland.
"""

from __future__ import annotations

import pytest

from bench import vm_box, vm_report

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
    assert vm_report.kept_section(text) == "\n" + ours
    assert vm_report.SECTION.sub("", text) == "# b\n\n## A\n\na\n\n## B\n\nb\n"
    assert vm_report.kept_section("# b\n\n## A\n") == ""


def test_userland_bench_reads_netwall_output():
    check = "What this kernel can emulate:\n  netem    NO   propagation/FEC delay\n"
    assert vm_report.netem_line(check) == "netem NO"
    run = ("netwall: note: this kernel has no netem\n# netwall allreduce/ring on pair\n"
           "         65536      16384  float       0.71        92.76   92.76   0.66  +7.1%   0"
           "   0.002     ok\n")
    assert vm_report.ran(run) == "65536 16384 float 0.71 ... ok"
    with pytest.raises(vm_report.Failed, match="did not verify"):
        vm_report.ran(run.replace(" ok", " FAIL"))
    # As `netwall run` prints now: D and host columns, a retry line, a flag, the cost line.
    proven = ("# netwall allreduce/ring on pair\n"
              "       1048576     262144  float      18.40  57.0  57.0  18.35   +0.3%   0   0.028"
              "     ok    2000  +0.4%\n#   at dilation 1000 the host added 3.2%: measured again\n"
              "# cost: 2.1 s of wall time for 0.1 ms of cluster time\n")
    assert vm_report.ran(proven) == \
        "1048576 262144 float 18.40 ... ok, D 2000, host +0.4%, faithful"
    flagged = proven.replace("# cost", "#   NOT FAITHFUL: host software added 25.9%\n# cost")
    assert vm_report.ran(flagged).endswith("NOT FAITHFUL")
    with pytest.raises(vm_report.Failed, match="did not verify"):
        vm_report.ran(proven.replace(" ok ", " WRONG "))
