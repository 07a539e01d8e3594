"""Mandate rules (bot/policy/mandate.py against config/mandates.yml): every limit at and just past it,
routing to the lowest role, configuration errors, reason texts."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from bot.policy.clock import FixedClock, at
from bot.policy.mandate import MandateError, MandateRequest, MandateTable, Reason

TODAY = date(2025, 6, 15)
D = Decimal


@pytest.fixture(scope="module")
def table() -> MandateTable:
    return MandateTable.load()


def req(decision: str, **kwargs) -> MandateRequest:
    return MandateRequest(decision, today=TODAY, **kwargs)


def refund(amount, age=5, **kwargs) -> MandateRequest:
    return req("refund", amount=D(amount), order_age_days=age, **kwargs)


def codes(verdict) -> list[str]:
    return [r.code for r in verdict.reasons]


# ------------------------------------------------------------------ the default table, limit by limit

def test_default_roles(table):
    assert table.roles == ("bot", "agent", "senior_agent", "supervisor")
    assert set(table.decisions) == {"refund", "goodwill_voucher", "payment_arrangement", "retention_discount"}


@pytest.mark.parametrize("role, ok, over", [
    ("bot", "25", "25.01"), ("agent", "150", "150.01"), ("senior_agent", "1000", "1000.01")])
def test_refund_amount_limits(table, role, ok, over):
    assert table.evaluate(role, refund(ok)).allowed
    verdict = table.evaluate(role, refund(over))
    assert not verdict.allowed and codes(verdict) == ["amount_over_limit"]
    assert verdict.reasons[0].params == {"role": role, "amount": D(over), "limit": D(ok)}


def test_refund_supervisor_any_amount(table):
    assert table.may("supervisor", refund("1000000"))
    assert table.may("supervisor", req("refund"))  # no limits, so no amount needed


def test_refund_order_age_for_bot(table):
    assert table.may("bot", refund("10", age=30))
    verdict = table.evaluate("bot", refund("10", age=31))
    assert codes(verdict) == ["order_too_old"] and verdict.lowest_role == "agent"
    assert table.may("agent", refund("10", age=400))  # the agent has no age limit


@pytest.mark.parametrize("amount, lowest", [
    ("5", "bot"), ("25", "bot"), ("25.01", "agent"), ("150", "agent"), ("200", "senior_agent"),
    ("1000", "senior_agent"), ("1000.01", "supervisor"), ("5000", "supervisor")])
def test_refund_routing(table, amount, lowest):
    assert table.lowest_role(refund(amount)) == lowest
    verdict = table.evaluate("bot", refund(amount))
    assert verdict.lowest_role == lowest and verdict.allowed == (lowest == "bot")


def test_several_violations_give_several_reasons(table):
    verdict = table.evaluate("bot", refund("40", age=45))
    assert codes(verdict) == ["amount_over_limit", "order_too_old"]
    assert verdict.lowest_role == "agent"


def test_voucher_amount_limits(table):
    for role, ok, over in [("bot", "10", "10.01"), ("agent", "50", "50.01"), ("senior_agent", "150", "150.01")]:
        assert table.may(role, req("goodwill_voucher", amount=D(ok)))
        assert codes(table.evaluate(role, req("goodwill_voucher", amount=D(over)))) == ["amount_over_limit"]
    assert table.lowest_role(req("goodwill_voucher", amount=D("30"))) == "agent"
    assert table.lowest_role(req("goodwill_voucher", amount=D("100"))) == "senior_agent"
    assert table.lowest_role(req("goodwill_voucher", amount=D("150.01"))) == "supervisor"


def test_voucher_once_a_year(table):
    first = req("goodwill_voucher", amount=D("10"))
    assert table.may("bot", first)
    for days_ago in (0, 100, 365):  # the window includes today and today - 365
        second = req("goodwill_voucher", amount=D("10"), previous=(TODAY - timedelta(days=days_ago),))
        verdict = table.evaluate("bot", second)
        assert not verdict.allowed and codes(verdict) == ["count_exceeded"]
        assert verdict.reasons[0].params == {"role": "bot", "count": 2, "limit": 1, "period_days": 365}
        assert verdict.lowest_role == "agent"
    old = req("goodwill_voucher", amount=D("10"), previous=(TODAY - timedelta(days=366),))
    assert table.may("bot", old)


def test_count_includes_future_dates_and_agent_has_no_count(table):
    odd = req("goodwill_voucher", amount=D("5"), previous=(TODAY + timedelta(days=3),))
    assert not table.may("bot", odd)
    many = req("goodwill_voucher", amount=D("5"), previous=(TODAY,) * 5)
    assert table.may("agent", many)


@pytest.mark.parametrize("role, ok, over", [("bot", 3, 4), ("agent", 6, 7), ("senior_agent", 12, 13)])
def test_instalment_limits(table, role, ok, over):
    assert table.may(role, req("payment_arrangement", instalments=ok, amount=D("300")))
    verdict = table.evaluate(role, req("payment_arrangement", instalments=over, amount=D("300")))
    assert codes(verdict) == ["instalments_over_limit"]


def test_arrangement_amount_for_bot(table):
    assert table.may("bot", req("payment_arrangement", instalments=3, amount=D("300")))
    verdict = table.evaluate("bot", req("payment_arrangement", instalments=3, amount=D("300.01")))
    assert codes(verdict) == ["amount_over_limit"] and verdict.lowest_role == "agent"
    assert table.may("agent", req("payment_arrangement", instalments=6, amount=D("5000")))


@pytest.mark.parametrize("instalments, lowest", [
    (2, "bot"), (3, "bot"), (4, "agent"), (5, "agent"), (7, "senior_agent"), (12, "senior_agent"),
    (13, "supervisor"), (48, "supervisor")])
def test_arrangement_routing(table, instalments, lowest):
    assert table.lowest_role(req("payment_arrangement", instalments=instalments, amount=D("200"))) == lowest


def test_retention_discount(table):
    verdict = table.evaluate("bot", req("retention_discount", percent=D("1")))
    assert codes(verdict) == ["not_in_mandate"] and verdict.lowest_role == "agent"
    assert table.may("agent", req("retention_discount", percent=D("10")))
    assert codes(table.evaluate("agent", req("retention_discount", percent=D("10.5")))) == ["percent_over_limit"]
    assert table.may("senior_agent", req("retention_discount", percent=D("25")))
    assert codes(table.evaluate("senior_agent", req("retention_discount", percent=D("26")))) == ["percent_over_limit"]
    assert table.may("supervisor", req("retention_discount", percent=D("60")))


@pytest.mark.parametrize("percent, lowest", [("5", "agent"), ("10.5", "senior_agent"), ("15", "senior_agent"),
                                             ("25", "senior_agent"), ("26", "supervisor")])
def test_retention_routing(table, percent, lowest):
    assert table.lowest_role(req("retention_discount", percent=D(percent))) == lowest


# ------------------------------------------------------------------ missing values, inputs, unknowns

@pytest.mark.parametrize("role, request_, code, lowest", [
    ("bot", MandateRequest("refund", order_age_days=3, today=TODAY), "missing_amount", "supervisor"),
    ("agent", MandateRequest("refund", today=TODAY), "missing_amount", "supervisor"),
    ("bot", MandateRequest("refund", amount=D("5"), today=TODAY), "missing_order_age", "agent"),
    ("bot", MandateRequest("payment_arrangement", amount=D("100"), today=TODAY), "missing_instalments",
     "supervisor"),
    ("agent", MandateRequest("retention_discount", today=TODAY), "missing_percent", "supervisor")])
def test_missing_values_are_never_allowed(table, role, request_, code, lowest):
    verdict = table.evaluate(role, request_)
    assert not verdict.allowed and codes(verdict) == [code]
    assert verdict.lowest_role == lowest  # the first role whose limits don't need the missing value


def test_request_normalises_and_rejects_bad_values():
    assert MandateRequest("refund", amount=25).amount == D("25")
    assert MandateRequest("refund", amount=0.1).amount == D("0.1")
    assert MandateRequest("refund", percent="10.5").percent == D("10.5")
    assert MandateRequest("refund", previous=[TODAY]).previous == (TODAY,)
    for kwargs in ({"amount": -1}, {"amount": "abc"}, {"amount": True}, {"instalments": 2.5},
                   {"order_age_days": -3}, {"previous": ("2025-01-01",)}):
        with pytest.raises(ValueError):
            MandateRequest("refund", **kwargs)


def test_today_defaults_to_the_clocks_today_in_the_configured_zone():
    # 00:30 on 16 June in Amsterdam is still 15 June in UTC: "today" is the date in the service's zone
    table = MandateTable.load(clock=FixedClock(at(2025, 6, 16, 0, 30)))
    verdict = table.evaluate("bot", MandateRequest("goodwill_voucher", amount=D("5"), previous=(date(2025, 6, 16),)))
    assert verdict.request.today == date(2025, 6, 16) and codes(verdict) == ["count_exceeded"]
    verdict = table.evaluate("bot", MandateRequest("goodwill_voucher", amount=D("5"), previous=(date(2024, 6, 15),)))
    assert verdict.request.today == date(2025, 6, 16) and codes(verdict) == []  # 366 days ago: no longer counts


def test_unknown_role_or_decision(table):
    with pytest.raises(MandateError, match="unknown role 'intern'"):
        table.evaluate("intern", refund("5"))
    with pytest.raises(MandateError, match="unknown decision 'free_laptop'"):
        table.evaluate("bot", req("free_laptop", amount=D("5")))
    with pytest.raises(MandateError, match="unknown decision"):
        table.lowest_role(req("free_laptop"))


# ------------------------------------------------------------------ business-specific configuration

BASE = {
    "roles": ["bot", "agent", "senior_agent", "supervisor"],
    "decisions": {"refund": {"bot": {"max_amount": 25}, "agent": {"max_amount": 150},
                             "senior_agent": {"max_amount": 1000}, "supervisor": {}}},
}


def config(**changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def test_business_added_role_in_the_middle():
    data = config(roles=["bot", "agent", "senior_agent", "team_lead", "supervisor"])
    data["decisions"]["refund"]["team_lead"] = {"max_amount": 2500}
    data["decisions"]["retention_discount"] = {"agent": {"max_percent": 10}, "supervisor": {}}
    table = MandateTable.from_dict(data)
    assert table.lowest_role(req("refund", amount=D("2000"))) == "team_lead"
    assert table.lowest_role(req("refund", amount=D("2500.01"))) == "supervisor"
    assert table.lowest_role(req("refund", amount=D("800"))) == "senior_agent"
    verdict = table.evaluate("team_lead", req("retention_discount", percent=D("15")))
    assert codes(verdict) == ["not_in_mandate"] and verdict.lowest_role == "supervisor"


def test_segments_limit():
    data = config()
    data["decisions"]["refund"]["bot"] = {"max_amount": 25, "segments": ["regular", "gold"]}
    table = MandateTable.from_dict(data)
    assert table.may("bot", req("refund", amount=D("20"), customer_segment="gold"))
    verdict = table.evaluate("bot", req("refund", amount=D("20"), customer_segment="business"))
    assert codes(verdict) == ["segment_not_allowed"] and verdict.lowest_role == "agent"
    assert verdict.reasons[0].params["allowed"] == ["regular", "gold"]
    assert codes(table.evaluate("bot", req("refund", amount=D("20")))) == ["missing_segment"]
    assert codes(table.evaluate("bot", req("refund", amount=D("30"), customer_segment="vip"))) == [
        "segment_not_allowed", "amount_over_limit"]


def test_none_null_absent_and_any():
    data = config()
    data["decisions"]["refund"].update(bot="none", agent=None)
    del data["decisions"]["refund"]["senior_agent"]
    table = MandateTable.from_dict(data)
    assert table.decisions["refund"] == {"supervisor": table.decisions["refund"]["supervisor"]}
    for role in ("bot", "agent", "senior_agent"):
        assert codes(table.evaluate(role, req("refund", amount=D("1")))) == ["not_in_mandate"]
    assert table.lowest_role(req("refund", amount=D("1"))) == "supervisor"
    nobody = MandateTable.from_dict(config(decisions={"refund": {"bot": None}}))
    assert nobody.lowest_role(req("refund", amount=D("1"))) is None


def _decisions(**limits):
    return {"refund": {"bot": limits}}


@pytest.mark.parametrize("data, message", [
    ({"roles": []}, "roles must list at least one role"),
    (config(roles=None), "roles must list at least one role"),
    (config(roles="bot"), "roles must be a list"),
    (config(roles=["bot", "agent", "bot", "supervisor"]), "roles[2]: role 'bot' is listed twice"),
    (config(roles=["bot", 7]), "roles[1] must be a role name, got 7"),
    (config(decisions={}), "decisions must be a non-empty mapping"),
    (config(decisions={"refund": {"intern": {}}}), "decisions.refund.intern: unknown role 'intern'"),
    (config(decisions={"refund": ["bot"]}), "decisions.refund must be a mapping role -> limits"),
    (config(decisions={"refund": {"bot": 25}}), "decisions.refund.bot must be a mapping of limits"),
    (config(decisions=_decisions(max_amout=25)), "decisions.refund.bot.max_amout is not a known limit"),
    (config(decisions=_decisions(max_amount="abc")),
     "decisions.refund.bot.max_amount must be a non-negative number, got 'abc'"),
    (config(decisions=_decisions(max_amount=-5)), "decisions.refund.bot.max_amount must be a non-negative number"),
    (config(decisions=_decisions(max_amount=True)), "decisions.refund.bot.max_amount must be a non-negative"),
    (config(decisions=_decisions(max_percent=120)), "decisions.refund.bot.max_percent must be a number between 0 and 100"),
    (config(decisions=_decisions(max_instalments=2.5)),
     "decisions.refund.bot.max_instalments must be a non-negative whole number, got 2.5"),
    (config(decisions=_decisions(max_order_age_days="30")), "decisions.refund.bot.max_order_age_days must be"),
    (config(decisions=_decisions(max_count=1)), "decisions.refund.bot has max_count without period_days"),
    (config(decisions=_decisions(period_days=365)), "decisions.refund.bot has period_days without max_count"),
    (config(decisions=_decisions(segments=[])), "decisions.refund.bot.segments must be a non-empty list"),
    (config(decisions=_decisions(segments="gold")), "decisions.refund.bot.segments must be a non-empty list"),
    (config(extra=1), "extra is not a known section"),
    ([1, 2], "must be a mapping with roles and decisions"),
])
def test_configuration_errors(data, message):
    with pytest.raises(MandateError) as error:
        MandateTable.from_dict(data)
    assert message in str(error.value)


def test_load_from_env_and_errors_name_the_file(tmp_path, monkeypatch):
    good = tmp_path / "mandates.yml"
    good.write_text("roles: [bot, supervisor]\ndecisions:\n  refund:\n    bot: {max_amount: 5}\n    supervisor: {}\n")
    monkeypatch.setenv("MANDATES_FILE", str(good))
    assert MandateTable.load().roles == ("bot", "supervisor")
    bad = tmp_path / "bad.yml"
    bad.write_text("roles: [bot]\ndecisions:\n  refund:\n    bot: {max_amount: abc}\n")
    with pytest.raises(MandateError, match=r"decisions\.refund\.bot\.max_amount .*got 'abc' \(in .*bad\.yml\)"):
        MandateTable.load(bad)
    broken = tmp_path / "broken.yml"
    broken.write_text("roles: [bot\n")
    with pytest.raises(MandateError, match="not valid YAML"):
        MandateTable.load(broken)
    with pytest.raises(MandateError, match="cannot read"):
        MandateTable.load(tmp_path / "missing.yml")


# ------------------------------------------------------------------ texts and audit

def test_reason_texts_dutch_and_english(table):
    verdict = table.evaluate("bot", refund("40"))
    assert verdict.reasons[0].text("nl") == "bedrag €40,00 is meer dan de grens van €25,00 voor de bot"
    assert verdict.reasons[0].text("en") == "amount €40.00 is over the bot's limit of €25.00"
    big = table.evaluate("senior_agent", refund("1000.01")).reasons[0]
    assert big.text("nl") == "bedrag €1.000,01 is meer dan de grens van €1.000,00 voor de senior agent"
    assert big.text("en") == "amount €1,000.01 is over the senior agent's limit of €1,000.00"


@pytest.mark.parametrize("role, request_, nl, en", [
    ("bot", refund("5", age=31), "bestelling is 31 dagen oud, meer dan de grens van 30 dagen voor de bot",
     "order is 31 days old, over the bot's limit of 30 days"),
    ("agent", req("retention_discount", percent=D("10.5")),
     "korting van 10,5% is meer dan de grens van 10% voor de agent",
     "discount of 10.5% is over the agent's limit of 10%"),
    ("bot", req("payment_arrangement", instalments=4, amount=D("100")),
     "4 termijnen is meer dan de grens van 3 termijnen voor de bot",
     "4 instalments is over the bot's limit of 3 instalments"),
    ("bot", req("goodwill_voucher", amount=D("5"), previous=(TODAY,)),
     "klant kreeg dit al 1 keer binnen 365 dagen; de bot mag dit hooguit 1 keer per 365 dagen",
     "customer already received this once within 365 days; the bot may grant it at most once per 365 days"),
    ("bot", req("retention_discount", percent=D("5")), "de bot mag een behoudkorting niet zelf toekennen",
     "the bot may not grant a retention discount"),
    ("agent", req("refund"), "bedrag ontbreekt, nodig voor de grens van de agent",
     "amount is missing, needed for the agent's limit"),
])
def test_more_texts(table, role, request_, nl, en):
    verdict = table.evaluate(role, request_)
    assert verdict.explain("nl") == nl and verdict.explain("en") == en


def test_explain_joins_reasons_and_allowed_text(table):
    verdict = table.evaluate("bot", refund("40", age=45))
    assert verdict.explain("en") == ("amount €40.00 is over the bot's limit of €25.00; "
                                     "order is 45 days old, over the bot's limit of 30 days")
    assert table.evaluate("agent", refund("40")).explain("nl") == "de agent mag dit zelf toekennen"
    with pytest.raises(ValueError):
        verdict.explain("de")
    assert Reason("something_new", {"role": "bot"}).text("en") == "something_new"


def test_as_dict_is_json_for_the_audit_log(table):
    verdict = table.evaluate("bot", req("goodwill_voucher", amount=D("12.50"), previous=(date(2025, 1, 2),)))
    data = json.loads(json.dumps(verdict.as_dict()))
    assert data["decision"] == "goodwill_voucher" and data["role"] == "bot"
    assert data["allowed"] is False and data["lowest_role"] == "agent"
    assert [r["code"] for r in data["reasons"]] == ["amount_over_limit", "count_exceeded"]
    assert data["reasons"][0] == {"code": "amount_over_limit",
                                  "params": {"role": "bot", "amount": "12.50", "limit": "10"},
                                  "text": "amount €12.50 is over the bot's limit of €10.00"}
    assert data["request"]["amount"] == "12.50" and data["request"]["previous"] == ["2025-01-02"]
    assert data["request"]["today"] == "2025-06-15"
