"""Tests for the link-profile catalogue: the shipped data, the maths, and the validation."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import yaml

from emulator.models import profiles as P
from foundation.errors import NetwallError

NUMERIC = list(P._NUMERIC_FIELDS)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep the developer's ~/.config/netwall and NETWALL_PROFILE_PATH out of every test."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv(P.PATH_ENV, raising=False)


@pytest.fixture
def cat():
    return P.catalogue()


def good_dict(name: str = "test-link") -> dict:
    """A valid profile as a plain dict, to be broken one field at a time."""
    data = yaml.safe_load((P.BUILTIN_DIR / "copper-800g.yaml").read_text())
    data["name"] = name
    return data


def write(tmp_path: Path, data, filename: str = "p.yaml") -> Path:
    path = tmp_path / filename
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def load_error(path: Path) -> str:
    with pytest.raises(NetwallError) as info:
        P.load_profile(path)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert str(path) in msg, msg
    return msg


# ---- the shipped data -------------------------------------------------------------------

REQUIRED = ["copper-800g", "optical-800g", "wide-and-slow-800g", "copper-1.6t", "optical-1.6t",
            "nvlink4", "nvlink5"]


def test_every_builtin_file_loads():
    files = sorted(P.BUILTIN_DIR.glob("*.yaml"))
    assert len(files) >= 5
    for f in files:
        prof = P.load_profile(f)
        assert prof.path == str(f)


def test_required_profiles_and_families_present(cat):
    for name in REQUIRED:
        assert name in cat
    assert {p.family for p in cat.values()} == set(P.FAMILIES)


def test_every_numeric_field_has_a_source(cat):
    for prof in cat.values():
        assert set(prof.sources) == set(NUMERIC), prof.name
        for key, text in prof.sources.items():
            assert isinstance(text, str) and len(text.strip()) > 10, (prof.name, key)


def test_derived_numbers_say_derived_and_match_their_inputs(cat):
    for prof in cat.values():
        # pJ/bit over the link = both ends' watts / rate
        assert prof.pj_per_bit == pytest.approx(2 * prof.watts_per_end / prof.rate_gbps * 1e3)
        assert "derived" in prof.sources["pj_per_bit"].lower(), prof.name


def test_reach_ordering(cat):
    for rate in ("800g", "1.6t"):
        copper, optical = cat[f"copper-{rate}"], cat[f"optical-{rate}"]
        wide = cat["wide-and-slow-800g"]
        assert copper.reach_m < wide.reach_m < optical.reach_m
    assert cat["copper-1.6t"].reach_m <= cat["copper-800g"].reach_m


def test_energy_ordering(cat):
    wide, optical, copper = cat["wide-and-slow-800g"], cat["optical-800g"], cat["copper-800g"]
    assert copper.pj_per_bit < wide.pj_per_bit < optical.pj_per_bit
    assert copper.watts_per_end < wide.watts_per_end < optical.watts_per_end
    # MOSAIC claims up to 68% less power than optics at the cable's end; with both ends'
    # SerDes inside the boundary (the same for both) a port must still save at least a third.
    assert wide.watts_per_end / optical.watts_per_end < 2 / 3


def test_afr_ordering(cat):
    optical = cat["optical-800g"]
    for name in ("copper-800g", "wide-and-slow-800g"):
        assert cat[name].afr < optical.afr / 10
    ratio = optical.afr / cat["wide-and-slow-800g"].afr
    assert 30 <= ratio <= 300  # "about 100x fewer failures than optics"


def test_spares_only_on_wide_and_slow(cat):
    for prof in cat.values():
        if prof.family == "wide-and-slow":
            assert prof.spare_lanes > 0 and prof.lanes >= 100
        else:
            # narrow-and-fast: tens of lanes at most (an NVLink bundle is 18 links x 2 lanes)
            assert prof.spare_lanes == 0 and prof.lanes < 100


def test_to_dict_is_json_ready(cat):
    d = cat["optical-800g"].to_dict()
    back = json.loads(json.dumps(d))
    assert back["name"] == "optical-800g"
    assert set(back["sources"]) == set(NUMERIC)
    assert back["rate_gbps"] == 800


def test_profiles_are_immutable(cat):
    prof = cat["copper-800g"]
    with pytest.raises(AttributeError):
        prof.rate_gbps = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        prof.sources["afr"] = "x"  # type: ignore[index]


# ---- the maths ----------------------------------------------------------------------------


def make(**over) -> P.LinkProfile:
    base = P.load_profile(P.BUILTIN_DIR / "copper-800g.yaml")
    values = {f: getattr(base, f) for f in P.LinkProfile.__dataclass_fields__}
    values.update(over)
    return P.LinkProfile(**values)


def test_delay_ns_hand_computed():
    prof = make(delay_ns_per_m=5.0, fec_delay_ns=100.0)
    assert prof.delay_ns(0) == 100.0
    assert prof.delay_ns(2) == 110.0
    assert prof.delay_ns(50) == 350.0
    with pytest.raises(NetwallError):
        prof.delay_ns(-1)


def test_frame_loss_hand_computed():
    # tiny BER: 1 - (1-p)^n ~= n p; 9000 B = 72,000 bits at 1e-13 -> 7.2e-9
    prof = make(post_fec_ber=1e-13)
    assert prof.frame_loss(9000) == pytest.approx(7.2e-9, rel=1e-6)
    assert prof.frame_loss(0) == 0.0
    # moderate BER, checked against the closed form: 1 - (1 - 1e-4)^8000
    prof = make(post_fec_ber=1e-4)
    assert prof.frame_loss(1000) == pytest.approx(1 - (1 - 1e-4) ** 8000, rel=1e-12)
    assert prof.frame_loss(1000) == pytest.approx(0.550692, rel=1e-5)
    assert make(post_fec_ber=0.0).frame_loss(9000) == 0.0


def test_frame_loss_is_stable_where_naive_form_fails():
    prof = make(post_fec_ber=1e-18)
    naive = 1 - (1 - 1e-18) ** 8000
    assert naive == 0.0  # the naive form underflows to zero ...
    assert prof.frame_loss(1000) == pytest.approx(8e-15, rel=1e-9)  # ... this one does not


def test_fit_from_afr():
    assert make(afr=8.766e-3).fit == pytest.approx(1000.0)
    assert make(afr=0.0).fit == 0.0


# ---- validation ---------------------------------------------------------------------------


def test_good_dict_loads(tmp_path):
    prof = P.load_profile(write(tmp_path, good_dict()))
    assert prof.name == "test-link"


def test_missing_field(tmp_path):
    data = good_dict()
    del data["reach_m"]
    msg = load_error(write(tmp_path, data))
    assert "'reach_m'" in msg and "missing" in msg


def test_unknown_field(tmp_path):
    data = good_dict()
    data["colour"] = "blue"
    msg = load_error(write(tmp_path, data))
    assert "'colour'" in msg and "unknown" in msg


def test_number_without_source(tmp_path):
    data = good_dict()
    data["afr"] = {"value": 0.001}
    msg = load_error(write(tmp_path, data))
    assert "'afr'" in msg and "source" in msg


def test_bare_number_is_rejected(tmp_path):
    data = good_dict()
    data["reach_m"] = 2.0
    msg = load_error(write(tmp_path, data))
    assert "'reach_m'" in msg


def test_empty_source(tmp_path):
    data = good_dict()
    data["afr"]["source"] = "   "
    assert "'afr'" in load_error(write(tmp_path, data))


@pytest.mark.parametrize("key", ["lanes", "rate_gbps", "pre_fec_ber"])
def test_bool_is_not_a_number(tmp_path, key):
    data = good_dict()
    data[key]["value"] = True
    msg = load_error(write(tmp_path, data))
    assert f"'{key}'" in msg and "number" in msg


def test_exponent_without_dot_gets_a_hint(tmp_path):
    text = (P.BUILTIN_DIR / "copper-800g.yaml").read_text()
    text = text.replace("value: 1.0e-13", "value: 1e-13")
    msg = load_error(write(tmp_path, text))
    assert "'post_fec_ber'" in msg and "1.0e-5" in msg


def test_integer_field_rejects_float(tmp_path):
    data = good_dict()
    data["lanes"]["value"] = 8.5
    assert "'lanes'" in load_error(write(tmp_path, data))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rate_gbps", 0),
        ("lane_rate_gbps", -100),
        ("reach_m", 0),
        ("pre_fec_ber", 1.0),
        ("post_fec_ber", -1e-13),
        ("afr", -0.1),
        ("queue_bytes", 0),
        ("mtu_bytes", 67),
        ("mtu_bytes", 65536),
        ("delay_ns_per_m", float("nan")),
    ],
)
def test_out_of_range(tmp_path, key, value):
    data = good_dict()
    data[key]["value"] = value
    assert f"'{key}'" in load_error(write(tmp_path, data))


def test_unknown_family(tmp_path):
    data = good_dict()
    data["family"] = "carrier-pigeon"
    msg = load_error(write(tmp_path, data))
    assert "'family'" in msg and "carrier-pigeon" in msg


def test_lanes_inconsistent_with_rate(tmp_path):
    data = good_dict()
    data["lanes"]["value"] = 7  # 7 x 100 = 700 vs 800: 12.5% off
    msg = load_error(write(tmp_path, data))
    assert "'lanes'" in msg and "inconsistent" in msg


def test_lanes_within_two_percent_is_accepted(tmp_path):
    data = good_dict()
    data["lane_rate_gbps"]["value"] = 101.5  # 812 vs 800: 1.5%
    assert P.load_profile(write(tmp_path, data)).lanes == 8


def test_spares_on_copper_rejected(tmp_path):
    data = good_dict()
    data["spare_lanes"]["value"] = 2
    assert "'spare_lanes'" in load_error(write(tmp_path, data))


def test_yaml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, 'name: x\nfamily: copper\nrate_gbps: {value: 800, source: "a"\n')
    msg = load_error(path)
    assert "YAML syntax error" in msg and "line" in msg


def test_not_a_mapping(tmp_path):
    msg = load_error(write(tmp_path, "- just\n- a list\n"))
    assert "mapping" in msg


# ---- catalogue, lookup, table -------------------------------------------------------------


def test_duplicate_name_across_files(tmp_path):
    a = write(tmp_path, good_dict("same-name"), "a.yaml")
    b = write(tmp_path, good_dict("same-name"), "b.yaml")
    with pytest.raises(NetwallError) as info:
        P.catalogue(extra=[tmp_path])
    msg = str(info.value)
    assert "\n" not in msg and "same-name" in msg and str(a) in msg and str(b) in msg


def test_user_profile_clashing_with_builtin(tmp_path):
    write(tmp_path, good_dict("copper-800g"))
    with pytest.raises(NetwallError, match="copper-800g"):
        P.catalogue(extra=[tmp_path])


def test_same_file_twice_is_not_a_duplicate(tmp_path):
    path = write(tmp_path, good_dict("once"))
    cat = P.catalogue(extra=[path, tmp_path])
    assert cat["once"].path == str(path)


def test_nonexistent_extra_path(tmp_path):
    with pytest.raises(NetwallError, match="does not exist"):
        P.catalogue(extra=[tmp_path / "nope"])


def test_env_path_adds_user_profile(tmp_path, monkeypatch):
    d1, d2 = tmp_path / "one", tmp_path / "two"
    d1.mkdir()
    d2.mkdir()
    write(d1, good_dict("site-copper"), "x.yaml")
    single = write(d2, good_dict("site-other"), "y.yaml")
    monkeypatch.setenv(P.PATH_ENV, f"{d1}{os.pathsep}{single}")
    cat = P.catalogue()
    assert "site-copper" in cat and "site-other" in cat
    assert "copper-800g" in cat  # built-ins still there


def test_home_config_dir_is_read(tmp_path, monkeypatch):
    home = tmp_path / "home"
    user = home / ".config" / "netwall" / "profiles"
    user.mkdir(parents=True)
    write(user, good_dict("from-home"))
    monkeypatch.setenv("HOME", str(home))
    assert "from-home" in P.catalogue()


def test_get_profile(cat):
    assert P.get_profile("optical-800g", cat).family == "optical"
    with pytest.raises(NetwallError) as info:
        P.get_profile("optical-9000g", cat)
    msg = str(info.value)
    assert msg.startswith("unknown link profile 'optical-9000g' (known: ")
    assert "copper-800g" in msg and "wide-and-slow-800g" in msg and "\n" not in msg


def test_fit_of_builtins_is_in_sane_units(cat):
    # optical transceivers are quoted in the hundreds of FIT; copper/MOSAIC two orders lower
    assert 100 <= cat["optical-800g"].fit <= 2000
    assert cat["copper-800g"].fit < 20
    assert math.isclose(cat["copper-800g"].fit, cat["copper-800g"].afr * 1e9 / 8766)
