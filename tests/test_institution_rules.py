"""End to end: every rule of Northwind Bank and Harbor Credit Union, on both
sides of its threshold, through the real pipeline.

A fresh SQLite file per test (``sqlite_url`` from conftest), the schema by
the real migrations (``bank_wiring.build``), both institutions' profiles as
shipped inside their installed packages (``profile.toml`` read with
``bank_core.profile.read_toml``, applied with ``apply_profile``), and every
driver loaded by the kernel's registry through stevedore from the packages'
entry points. Requests carry an explicit ``at`` so calendar days and months
are decided in each institution's own timezone (America/New_York,
America/Chicago), which the tests prove by straddling local midnight.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from bank_test_support import check_ledger
from institution_support import (
    DISTRIBUTIONS,
    HARBOR,
    NORTHWIND,
    TELLER,
    UTC,
    Bank,
    banks_fixture,  # noqa: F401 - a fixture
    changed_profile,
    hb_fixture,  # noqa: F401 - a fixture
    minor,
    nw_fixture,  # noqa: F401 - a fixture
    outcomes,
    reason,
    shipped_profile,
    svc_fixture,  # noqa: F401 - a fixture
)

from bank_core.errors import ProfileError
from bank_core.registry import Registry
from bank_core.service import BankService

# ===========================================================================
# The set-up itself: shipped profiles, real registry, drivers from the packages
# ===========================================================================

def test_profiles_are_the_shipped_ones_and_drivers_come_from_the_packages(
        svc: BankService, nw: Bank, hb: Bank) -> None:
    assert type(svc.registry) is Registry  # the stevedore-backed registry, not a stand-in
    insts = {i["id"]: i for i in svc.institutions()}
    assert insts[NORTHWIND] | {"name": None} == {
        "id": "northwind", "name": None, "currency": "USD", "timezone": "America/New_York",
        "hold_expiry_hours": 72, "profile_version": 1}
    assert insts[HARBOR] | {"name": None} == {
        "id": "harbor", "name": None, "currency": "USD", "timezone": "America/Chicago",
        "hold_expiry_hours": 48, "profile_version": 1}

    for bank, dist in ((nw, DISTRIBUTIONS[NORTHWIND]), (hb, DISTRIBUTIONS[HARBOR])):
        bank.open("a")
        bank.open("b")
        bank.deposit("a", "100.00", bank.local(2026, 6, 2))
        result = bank.submit("transfer", "10.00", src="a", dst="b", at=bank.local(2026, 6, 2, 13))
        assert result.status == "posted"
        # Every driver of the shipped profile answered, in profile order, and
        # the ones of the institution's package name their distribution.
        doc = shipped_profile(bank.id)
        listed = [ref["driver"] for slot in ("fee", "limit", "approval") for ref in doc[slot]]
        assert [r["driver"] for r in result.reasons] == listed
        for r in result.reasons:
            assert r["rule"] == r["driver"]
            if r["driver"].startswith(bank.id + "."):
                assert r["distribution"].startswith(dist + " "), r
            else:
                assert r["driver"].startswith("core."), r
                assert r["distribution"].startswith("bank-engine "), r


# ===========================================================================
# Northwind Bank (USD, America/New_York)
# ===========================================================================

# amount -> fee; 0.5%, rounded half-up to the cent, at least 0.25, at most 25.00
TRANSFER_FEES = [
    ("1.00", "0.25"),      # raw 0.005 -> 0.01, raised to the minimum
    ("48.99", "0.25"),     # raw 0.24495 -> 0.24, one cent under the minimum: raised
    ("50.00", "0.25"),     # raw exactly the minimum
    ("51.00", "0.26"),     # raw 0.255 -> 0.26, one cent over the minimum
    ("52.99", "0.26"),     # 0.26495 -> 0.26
    ("53.00", "0.27"),     # 0.265 -> 0.27: half-up (half-even would give 0.26)
    ("1000.00", "5.00"),
    ("4998.99", "24.99"),  # 24.99495 -> 24.99, one cent under the cap
    ("4999.99", "25.00"),  # 24.99995 -> 25.00, exactly the cap
]


def test_northwind_transfer_fee_half_up_with_floor_and_cap(nw: Bank) -> None:
    nw.open("payer")
    nw.open("payee")
    day = nw.local(2026, 6, 3, 9)
    for _ in range(3):
        nw.deposit("payer", "10000.00", day)
    posted, income, received = nw.posted("payer"), nw.fee_income(), 0
    for i, (amount, fee) in enumerate(TRANSFER_FEES):
        result = nw.submit("transfer", amount, src="payer", dst="payee", at=day + timedelta(hours=1, minutes=i))
        assert result.status == "posted", (amount, result)
        assert result.fee_total == fee, amount
        assert [(f.driver, f.rule, f.amount, f.currency, f.memo) for f in result.fees] == [
            ("northwind.transfer_fee", "northwind.transfer_fee", fee, "USD", "transfer fee")], amount
        r = reason(result, "northwind.transfer_fee")
        assert (r["slot"], r["driver"], r["outcome"], r["observed"]) == (
            "fee", "northwind.transfer_fee", "fee", f"{fee} USD"), r
        posted -= minor(amount) + minor(fee)
        income += minor(fee)
        received += minor(amount)
        assert nw.posted("payer") == posted
        assert nw.fee_income() == income, f"fee income did not grow by {fee} after {amount}"
        assert nw.posted("payee") == received
    # Over the cap: 0.5% of 10,000.00 is 50.00, charged 25.00 (the transfer is held for
    # review, >= 5,000.00, so its fee waits in fee income's pending credits).
    big = nw.submit("transfer", "10000.00", src="payer", dst="payee", at=day + timedelta(hours=3))
    assert big.status == "held"
    assert big.fee_total == "25.00" and [f.amount for f in big.fees] == ["25.00"]
    assert nw.fee_income() == income
    assert nw.internal("fee_income").credits_pending == 2500
    # Deposits and withdrawals pay no transfer fee: the driver answers with no line.
    dep = nw.submit("deposit", "100.00", dst="payee", at=day + timedelta(hours=4))
    wd = nw.submit("withdrawal", "100.00", src="payee", at=day + timedelta(hours=5))
    for result in (dep, wd):
        assert result.status == "posted" and result.fee_total == "0.00" and result.fees == []
        r = reason(result, "northwind.transfer_fee")
        assert r["outcome"] == "none" and "no transfer fee" in r["message"]
    check_ledger(nw.svc, nw.id)


def test_northwind_atm_fee_four_free_per_local_calendar_month(nw: Bank) -> None:
    nw.open("ann")
    nw.deposit("ann", "1000.00", nw.local(2026, 6, 1, 8))
    fees = []
    for n in range(1, 5):
        result = nw.submit("withdrawal", "20.00", src="ann", channel="atm", at=nw.local(2026, 6, n + 1, 10))
        assert result.status == "posted" and result.fee_total == "0.00", result
        r = reason(result, "northwind.atm_withdrawal_fee")
        assert r["outcome"] == "none" and f"atm withdrawal {n} of 4 free this month" in r["message"]
        fees.append(result.fee_total)
    # Branch withdrawals neither use the ATM allowance nor pay the ATM fee.
    branch = nw.submit("withdrawal", "20.00", src="ann", channel="branch", at=nw.local(2026, 6, 10))
    assert branch.status == "posted" and branch.fee_total == "0.00"
    income = nw.fee_income()
    fifth = nw.submit("withdrawal", "20.00", src="ann", channel="atm", at=nw.local(2026, 6, 11))
    assert fifth.status == "posted"
    assert fifth.fee_total == "2.00"
    assert [(f.rule, f.amount) for f in fifth.fees] == [("northwind.atm_withdrawal_fee", "2.00")]
    r = reason(fifth, "northwind.atm_withdrawal_fee")
    assert (r["outcome"], r["observed"]) == ("fee", "2.00 USD")
    assert r["message"] == "atm withdrawal 5 this month, 4 free: fee 2.00 USD"  # the driver's explanation
    assert nw.fee_income() == income + 200

    # 23:30 on 30 June in New York is already 1 July in UTC: still June, still charged.
    late_june = nw.local(2026, 6, 30, 23, 30)
    assert late_june.astimezone(UTC).date().isoformat() == "2026-07-01"
    sixth = nw.submit("withdrawal", "20.00", src="ann", channel="atm", at=late_june)
    assert sixth.fee_total == "2.00"
    # 00:30 on 1 July local (the same UTC day as the one above): a new month, free again.
    early_july = nw.local(2026, 7, 1, 0, 30)
    assert early_july.astimezone(UTC).date() == late_june.astimezone(UTC).date()
    july = nw.submit("withdrawal", "20.00", src="ann", channel="atm", at=early_july)
    assert july.status == "posted" and july.fee_total == "0.00"
    assert "atm withdrawal 1 of 4 free this month" in reason(july, "northwind.atm_withdrawal_fee")["message"]
    assert nw.fee_income() == income + 400
    assert nw.posted("ann") == minor("1000.00") - 8 * minor("20.00") - 400
    check_ledger(nw.svc, nw.id)


def test_northwind_single_transaction_max_10000(nw: Bank) -> None:
    nw.open("ann")
    nw.open("ben")
    day = nw.local(2026, 6, 4, 9)
    at_max = nw.submit("deposit", "10000.00", dst="ann", at=day)
    assert at_max.status == "posted"
    r = reason(at_max, "northwind.single_transaction")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("pass", "10000.00 USD", "10000.00 USD")
    nw.deposit("ann", "10000.00", day)
    for kind, src, dst in (("deposit", None, "ann"), ("withdrawal", "ann", None), ("transfer", "ann", "ben")):
        over = nw.submit(kind, "10000.01", src=src, dst=dst, at=day + timedelta(hours=1))
        assert over.status == "rejected", kind
        assert over.code == "northwind.single_transaction"
        r = reason(over, "northwind.single_transaction")
        assert (r["outcome"], r["threshold"], r["observed"]) == ("fail", "10000.00 USD", "10000.01 USD")
        assert "over the single-transaction limit" in r["message"]
        assert over.fee_total == "0.00" and over.fees == []  # a rejection charges nothing
    assert nw.posted("ann") == minor("20000.00") and nw.posted("ben") == 0
    assert nw.fee_income() == 0
    # A 10,000.00 transfer passes the limit (it is then held for review, >= 5,000.00).
    transfer = nw.submit("transfer", "10000.00", src="ann", dst="ben", at=day + timedelta(hours=2))
    assert outcomes(transfer.reasons)["northwind.single_transaction"] == "pass"
    assert transfer.status == "held"
    check_ledger(nw.svc, nw.id)


def test_northwind_daily_withdrawals_include_fees(nw: Bank) -> None:
    nw.open("ann")
    nw.open("ben")
    nw.deposit("ann", "5000.00", nw.local(2026, 6, 1, 9))
    nw.deposit("ben", "5000.00", nw.local(2026, 6, 1, 9))
    # ann: 1,000.00 + 1,500.00 on one local day is exactly 2,500.00.
    day = nw.local(2026, 6, 8, 9)
    assert nw.submit("withdrawal", "1000.00", src="ann", at=day).status == "posted"
    at_max = nw.submit("withdrawal", "1500.00", src="ann", at=day + timedelta(hours=1))
    assert at_max.status == "posted"
    r = reason(at_max, "northwind.daily_withdrawal")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("pass", "2500.00 USD", "2500.00 USD")
    over = nw.submit("withdrawal", "0.01", src="ann", at=day + timedelta(hours=2))
    assert over.status == "rejected" and over.code == "northwind.daily_withdrawal"
    r = reason(over, "northwind.daily_withdrawal")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("fail", "2500.00 USD", "2500.01 USD")
    # Transfers are not withdrawals: the day's limit does not stop them.
    assert nw.submit("transfer", "100.00", src="ann", dst="ben", at=day + timedelta(hours=3)).status == "posted"

    # ben: the ATM fee counts. Four free ATM withdrawals earlier in the month ...
    for n in range(4):
        assert nw.submit("withdrawal", "0.01", src="ben", channel="atm",
                         at=nw.local(2026, 6, 2 + n)).fee_total == "0.00"
    # ... then 2,498.01 + 2.00 fee = 2,500.01 is over, 2,498.00 + 2.00 is exactly at.
    over = nw.submit("withdrawal", "2498.01", src="ben", channel="atm", at=day)
    assert over.status == "rejected" and over.code == "northwind.daily_withdrawal"
    r = reason(over, "northwind.daily_withdrawal")
    assert (r["threshold"], r["observed"]) == ("2500.00 USD", "2500.01 USD")
    assert over.fee_total == "0.00"
    at_max = nw.submit("withdrawal", "2498.00", src="ben", channel="atm", at=day + timedelta(minutes=1))
    assert at_max.status == "posted" and at_max.fee_total == "2.00"
    r = reason(at_max, "northwind.daily_withdrawal")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("pass", "2500.00 USD", "2500.00 USD")
    check_ledger(nw.svc, nw.id)


def test_northwind_daily_withdrawals_reset_at_local_midnight_not_utc(nw: Bank) -> None:
    nw.open("cat")
    nw.deposit("cat", "9000.00", nw.local(2026, 6, 1, 9))
    evening = nw.local(2026, 6, 10, 19, 30)      # 23:30 UTC on 10 June
    later = nw.local(2026, 6, 10, 20, 30)        # 00:30 UTC on 11 June: new UTC day, same local day
    before_midnight = nw.local(2026, 6, 10, 23, 30)  # 03:30 UTC on 11 June
    after_midnight = nw.local(2026, 6, 11, 0, 30)    # 04:30 UTC on 11 June: same UTC day, new local day
    assert evening.astimezone(UTC).date() != later.astimezone(UTC).date()
    assert before_midnight.astimezone(UTC).date() == after_midnight.astimezone(UTC).date()

    assert nw.submit("withdrawal", "2500.00", src="cat", at=evening).status == "posted"
    for when in (later, before_midnight):
        result = nw.submit("withdrawal", "0.01", src="cat", at=when)
        assert result.status == "rejected" and result.code == "northwind.daily_withdrawal", when
        assert reason(result, "northwind.daily_withdrawal")["observed"] == "2500.01 USD"
    fresh = nw.submit("withdrawal", "2500.00", src="cat", at=after_midnight)
    assert fresh.status == "posted"
    assert reason(fresh, "northwind.daily_withdrawal")["observed"] == "2500.00 USD"
    again = nw.submit("withdrawal", "0.01", src="cat", at=after_midnight + timedelta(minutes=30))
    assert again.status == "rejected" and again.code == "northwind.daily_withdrawal"
    assert nw.posted("cat") == minor("4000.00")


def test_northwind_no_overdraft_counts_fees(nw: Bank) -> None:
    nw.open("dot")
    nw.open("eli")
    nw.open("fay")
    day = nw.local(2026, 6, 5, 9)
    nw.deposit("dot", "50.00", day)
    over = nw.submit("withdrawal", "50.01", src="dot", at=day + timedelta(minutes=1))
    assert over.status == "rejected" and over.code == "core.no_overdraft"
    r = reason(over, "core.no_overdraft")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("fail", "50.01 USD", "50.00 USD")
    assert "available 50.00 USD does not cover 50.01 USD" in r["message"]
    exact = nw.submit("withdrawal", "50.00", src="dot", at=day + timedelta(minutes=2))
    assert exact.status == "posted"
    assert reason(exact, "core.no_overdraft")["outcome"] == "pass"
    assert nw.posted("dot") == 0

    # A transfer must cover its fee too: 50.00 + 0.25 fits 50.25, 50.01 + 0.25 does not.
    nw.deposit("eli", "50.25", day)
    over = nw.submit("transfer", "50.01", src="eli", dst="fay", at=day + timedelta(minutes=3))
    assert over.status == "rejected" and over.code == "core.no_overdraft"
    r = reason(over, "core.no_overdraft")
    assert (r["threshold"], r["observed"]) == ("50.26 USD", "50.25 USD")
    exact = nw.submit("transfer", "50.00", src="eli", dst="fay", at=day + timedelta(minutes=4))
    assert exact.status == "posted" and exact.fee_total == "0.25"
    assert (nw.posted("eli"), nw.posted("fay"), nw.fee_income()) == (0, 5000, 25)
    check_ledger(nw.svc, nw.id)


def test_northwind_large_transfer_review_at_5000(nw: Bank) -> None:
    nw.open("gil")
    nw.open("hal")
    day = nw.local(2026, 6, 6, 9)
    nw.deposit("gil", "10000.00", day)
    under = nw.submit("transfer", "4999.99", src="gil", dst="hal", at=day + timedelta(minutes=1))
    assert under.status == "posted" and under.code is None
    r = reason(under, "northwind.large_transfer_review")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("approve", "5000.00 USD", "4999.99 USD")
    nw.deposit("gil", "10000.00", day)
    at = nw.submit("transfer", "5000.00", src="gil", dst="hal", at=day + timedelta(minutes=2))
    assert at.status == "held" and at.code == "northwind.large_transfer_review"
    r = reason(at, "northwind.large_transfer_review")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("review", "5000.00 USD", "5000.00 USD")
    assert "review" in r["message"]
    assert nw.svc.txn(nw.id, at.txn_id)["status"] == "held"
    # Deposits of any size are not reviewed.
    big = nw.submit("deposit", "9000.00", dst="hal", at=day + timedelta(minutes=3))
    assert big.status == "posted"
    assert reason(big, "northwind.large_transfer_review")["outcome"] == "approve"


def test_northwind_frozen_source_or_dest_is_rejected(nw: Bank) -> None:
    src = nw.open("ivy")
    dst = nw.open("jon")
    day = nw.local(2026, 6, 7, 9)
    nw.deposit("ivy", "1000.00", day)
    nw.deposit("jon", "1000.00", day)
    for frozen, other in ((src, dst), (dst, src)):
        assert nw.svc.set_account_status(nw.id, frozen, "frozen", TELLER).status == "frozen"
        attempts = [nw.submit("transfer", "10.00", src=src, dst=dst, at=day + timedelta(hours=1)),
                    nw.submit("deposit", "10.00", dst=frozen, at=day + timedelta(hours=1)),
                    nw.submit("withdrawal", "10.00", src=frozen, at=day + timedelta(hours=1))]
        for result in attempts:
            assert result.status == "rejected" and result.code == "core.frozen_reject", result
            r = reason(result, "core.frozen_reject")
            assert r["outcome"] == "reject" and r["message"] == f"account {frozen} is frozen"
            assert result.fee_total == "0.00" and result.fees == []
        # The account that is not frozen still works on its own.
        assert nw.submit("withdrawal", "1.00", src=other, at=day + timedelta(hours=2)).status == "posted"
        assert nw.svc.set_account_status(nw.id, frozen, "open", TELLER).status == "open"
        assert nw.actions(frozen)[-2:] == ["account.frozen", "account.unfrozen"]
    ok = nw.submit("transfer", "10.00", src=src, dst=dst, at=day + timedelta(hours=3))
    assert ok.status == "posted"
    assert reason(ok, "core.frozen_reject")["outcome"] == "approve"
    assert (nw.posted(src), nw.posted(dst)) == (minor("1000.00") - 100 - 1000 - 25,
                                                minor("1000.00") - 100 + 1000)
    check_ledger(nw.svc, nw.id)


# ===========================================================================
# Harbor Credit Union (USD, America/Chicago)
# ===========================================================================

def test_harbor_overdraft_fee_only_below_zero(hb: Bank) -> None:
    hb.open("dan", "checking-plus")
    hb.open("eve", "checking-plus")
    day = hb.local(2026, 6, 3, 9)
    hb.deposit("dan", "100.00", day)
    to_zero = hb.submit("withdrawal", "100.00", src="dan", at=day + timedelta(minutes=10))
    assert to_zero.status == "posted" and to_zero.fee_total == "0.00" and to_zero.fees == []
    r = reason(to_zero, "harbor.overdraft_fee")
    assert r["outcome"] == "none" and "balance after 0.00 USD is not overdrawn" in r["message"]
    assert hb.posted("dan") == 0 and hb.fee_income() == 0
    below = hb.submit("withdrawal", "0.01", src="dan", at=day + timedelta(minutes=20))
    assert below.status == "posted" and below.fee_total == "15.00"
    assert [(f.driver, f.rule, f.amount) for f in below.fees] == [
        ("harbor.overdraft_fee", "harbor.overdraft_fee", "15.00")]
    r = reason(below, "harbor.overdraft_fee")
    assert (r["outcome"], r["observed"]) == ("fee", "15.00 USD")
    assert "is overdrawn" in r["message"]  # the driver's explanation, not just the line's memo
    assert hb.posted("dan") == -1501 and hb.fee_income() == 1500

    # A transfer pays it the same way: 100.00 -> 0.00 free, one cent more -> fee.
    hb.deposit("eve", "200.00", day)
    assert hb.submit("transfer", "100.00", src="eve", dst="dan", at=day + timedelta(minutes=30)).fee_total == "0.00"
    over = hb.submit("transfer", "100.01", src="eve", dst="dan", at=day + timedelta(minutes=40))
    assert over.status == "posted" and over.fee_total == "15.00"
    assert hb.posted("eve") == -1501 and hb.fee_income() == 3000
    check_ledger(hb.svc, hb.id, no_overdraft=False)


def test_harbor_checking_plus_may_go_to_minus_500_fees_included(hb: Bank) -> None:
    hb.open("gus", "checking-plus")
    day = hb.local(2026, 6, 4, 9)
    # From 0.00: 485.01 + 15.00 fee would leave -500.01, one cent past the floor.
    over = hb.submit("withdrawal", "485.01", src="gus", at=day)
    assert over.status == "rejected" and over.code == "harbor.overdraft_limit"
    r = reason(over, "harbor.overdraft_limit")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("fail", "-500.00 USD", "-500.01 USD")
    assert "'checking-plus'" in r["message"]
    assert over.fee_total == "0.00" and over.fees == []  # rejected: the overdraft fee is not charged
    assert hb.posted("gus") == 0 and hb.fee_income() == 0
    # 485.00 + 15.00 lands exactly on -500.00: allowed.
    exact = hb.submit("withdrawal", "485.00", src="gus", at=day + timedelta(minutes=10))
    assert exact.status == "posted" and exact.fee_total == "15.00"
    r = reason(exact, "harbor.overdraft_limit")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("pass", "-500.00 USD", "-500.00 USD")
    assert hb.posted("gus") == -50000 and hb.fee_income() == 1500
    again = hb.submit("withdrawal", "0.01", src="gus", at=day + timedelta(minutes=20))
    assert again.status == "rejected" and again.code == "harbor.overdraft_limit"
    assert reason(again, "harbor.overdraft_limit")["observed"] == "-515.01 USD"
    check_ledger(hb.svc, hb.id, no_overdraft=False)


@pytest.mark.parametrize("product", ["standard", "savings"])
def test_harbor_other_products_have_no_overdraft(hb: Bank, product: str) -> None:
    hb.open("hal", product)
    day = hb.local(2026, 6, 4, 9)
    hb.deposit("hal", "100.00", day)
    over = hb.submit("withdrawal", "100.01", src="hal", at=day + timedelta(minutes=10))
    assert over.status == "rejected" and over.code == "harbor.overdraft_limit"
    r = reason(over, "harbor.overdraft_limit")
    # The 15.00 overdraft fee is part of the debit the limit sees.
    assert (r["threshold"], r["observed"]) == ("0.00 USD", "-15.01 USD")
    assert f"'{product}'" in r["message"]
    exact = hb.submit("withdrawal", "100.00", src="hal", at=day + timedelta(minutes=20))
    assert exact.status == "posted" and exact.fee_total == "0.00"
    assert reason(exact, "harbor.overdraft_limit")["observed"] == "0.00 USD"
    assert hb.posted("hal") == 0
    check_ledger(hb.svc, hb.id)


def test_harbor_monthly_outgoing_20000_per_local_calendar_month(hb: Bank) -> None:
    hb.open("ida", "checking-plus")
    hb.open("joe")
    for d in (1, 2, 3):
        hb.deposit("ida", "9000.00", hb.local(2026, 6, d, 8))
    assert hb.submit("transfer", "10000.00", src="ida", dst="joe", at=hb.local(2026, 6, 5)).status == "posted"
    assert hb.submit("withdrawal", "9999.99", src="ida", at=hb.local(2026, 6, 12)).status == "posted"
    at_max = hb.submit("transfer", "0.01", src="ida", dst="joe", at=hb.local(2026, 6, 20))
    assert at_max.status == "posted"
    r = reason(at_max, "harbor.monthly_outgoing")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("pass", "20000.00 USD", "20000.00 USD")
    # 23:30 on 30 June in Chicago is 1 July in UTC: still June.
    late_june = hb.local(2026, 6, 30, 23, 30)
    assert late_june.astimezone(UTC).month == 7
    over = hb.submit("withdrawal", "0.01", src="ida", at=late_june)
    assert over.status == "rejected" and over.code == "harbor.monthly_outgoing"
    r = reason(over, "harbor.monthly_outgoing")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("fail", "20000.00 USD", "20000.01 USD")
    # Deposits are not outgoing and do not make room.
    hb.deposit("ida", "100.00", hb.local(2026, 6, 30, 23, 40))
    assert hb.submit("transfer", "0.01", src="ida", dst="joe",
                     at=hb.local(2026, 6, 30, 23, 45)).code == "harbor.monthly_outgoing"
    # 00:30 on 1 July in Chicago (the same UTC day as above): a new month.
    july = hb.submit("transfer", "0.01", src="ida", dst="joe", at=hb.local(2026, 7, 1, 0, 30))
    assert july.status == "posted"
    assert reason(july, "harbor.monthly_outgoing")["observed"] == "0.01 USD"


def test_harbor_monthly_outgoing_counts_principal_not_fees(hb: Bank) -> None:
    hb.open("kim", "checking-plus")
    for d in (1, 2, 3):
        hb.deposit("kim", "6663.33", hb.local(2026, 6, d, 8))
    hb.deposit("kim", "0.01", hb.local(2026, 6, 4, 8))  # 19,990.00 in all
    big = hb.submit("withdrawal", "20000.00", src="kim", at=hb.local(2026, 6, 8))
    assert big.status == "posted" and big.fee_total == "15.00"  # goes to -10.00, pays 15.00
    assert reason(big, "harbor.monthly_outgoing")["observed"] == "20000.00 USD"
    assert hb.posted("kim") == -2500
    over = hb.submit("withdrawal", "0.01", src="kim", at=hb.local(2026, 6, 9))
    assert over.status == "rejected" and over.code == "harbor.monthly_outgoing"
    assert reason(over, "harbor.monthly_outgoing")["observed"] == "20000.01 USD"


def _velocity_account(hb: Bank, name: str, t0: datetime) -> None:
    """Fund ``name`` (the deposit is not outgoing) and send five outgoing
    transactions 10 minutes apart from t0, alternating withdrawals and
    transfers; all post, at positions 1..5 of 6."""
    hb.open(name)
    hb.deposit(name, "1000.00", t0 - timedelta(minutes=5))
    for n in range(5):
        kind = "withdrawal" if n % 2 else "transfer"
        result = hb.submit(kind, "10.00", src=name, dst="sink" if kind == "transfer" else None,
                           at=t0 + timedelta(minutes=10 * n))
        assert result.status == "posted", result
        r = reason(result, "harbor.velocity_review")
        assert (r["outcome"], r["threshold"], r["observed"]) == ("approve", "6", str(n + 1))


def test_harbor_velocity_sixth_outgoing_within_60_minutes_is_held(hb: Bank) -> None:
    hb.open("sink")
    t0 = hb.local(2026, 6, 15, 10)
    _velocity_account(hb, "fast", t0)
    sixth = hb.submit("transfer", "10.00", src="fast", dst="sink", at=t0 + timedelta(minutes=50))
    assert sixth.status == "held" and sixth.code == "harbor.velocity_review"
    r = reason(sixth, "harbor.velocity_review")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("review", "6", "6")
    assert "within 60 minutes" in r["message"]
    # The held one counts too: the seventh is held at position 7.
    seventh = hb.submit("withdrawal", "10.00", src="fast", at=t0 + timedelta(minutes=55))
    assert seventh.status == "held"
    assert reason(seventh, "harbor.velocity_review")["observed"] == "7"
    # The account receiving those transfers is not affected: incoming is not outgoing.
    incoming = hb.submit("withdrawal", "1.00", src="sink", at=t0 + timedelta(minutes=56))
    assert incoming.status == "posted"
    assert reason(incoming, "harbor.velocity_review")["observed"] == "1"

    # Just inside the window (59:59 after the first) the sixth is still held ...
    _velocity_account(hb, "edge", t0)
    inside = hb.submit("withdrawal", "10.00", src="edge", at=t0 + timedelta(minutes=59, seconds=59))
    assert inside.status == "held"
    assert reason(inside, "harbor.velocity_review")["observed"] == "6"
    # ... at exactly 60 minutes the first has left the window: position 5, posted.
    _velocity_account(hb, "slow", t0)
    outside = hb.submit("withdrawal", "10.00", src="slow", at=t0 + timedelta(minutes=60))
    assert outside.status == "posted"
    r = reason(outside, "harbor.velocity_review")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("approve", "6", "5")
    check_ledger(hb.svc, hb.id)


def test_harbor_new_account_withdrawals_over_1000_are_held(hb: Bank) -> None:
    w = hb.local(2026, 6, 20, 12)
    hb.open("new", opened_at=w - timedelta(days=1))
    hb.open("edge", opened_at=w - timedelta(days=7) + timedelta(seconds=1))
    hb.open("week", opened_at=w - timedelta(days=7))
    hb.open("other")
    for name in ("new", "edge", "week"):
        hb.deposit(name, "4000.00", w - timedelta(hours=2))

    at_threshold = hb.submit("withdrawal", "1000.00", src="new", at=w)
    assert at_threshold.status == "posted"
    r = reason(at_threshold, "harbor.new_account_review")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("approve", "1000.00 USD", "1000.00 USD")
    over = hb.submit("withdrawal", "1000.01", src="new", at=w + timedelta(minutes=1))
    assert over.status == "held" and over.code == "harbor.new_account_review"
    r = reason(over, "harbor.new_account_review")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("review", "1000.00 USD", "1000.01 USD")
    assert "account opened 1 days ago" in r["message"]
    # Transfers out of a new account are not this rule's business.
    transfer = hb.submit("transfer", "1000.01", src="new", dst="other", at=w + timedelta(minutes=2))
    assert transfer.status == "posted"
    assert reason(transfer, "harbor.new_account_review")["outcome"] == "approve"

    # One second short of 7 days old: still new.
    edge = hb.submit("withdrawal", "1000.01", src="edge", at=w)
    assert edge.status == "held" and edge.code == "harbor.new_account_review"
    # Exactly 7 days old: no longer new; the answer reports days, not amounts.
    week = hb.submit("withdrawal", "1000.01", src="week", at=w)
    assert week.status == "posted"
    r = reason(week, "harbor.new_account_review")
    assert (r["outcome"], r["threshold"], r["observed"]) == ("approve", "7", "7")
    check_ledger(hb.svc, hb.id)


# ===========================================================================
# One stream, two institutions
# ===========================================================================

# (kind, amount, source, dest, channel); times are the same UTC instants for both.
STREAM = [
    ("deposit", "10000.00", None, "a", "branch"),
    ("deposit", "10000.00", None, "a", "branch"),
    ("deposit", "10000.01", None, "a", "branch"),     # NW: over single max; HB: no such limit
    ("transfer", "5000.00", "a", "b", "branch"),      # NW: held for review, fee 25.00; HB: posts, free
    ("transfer", "4999.99", "a", "b", "branch"),      # NW: fee 25.00; HB: free
    ("withdrawal", "20.00", "b", None, "atm"),
    ("withdrawal", "20.00", "b", None, "atm"),
    ("withdrawal", "20.00", "b", None, "atm"),
    ("withdrawal", "20.00", "b", None, "atm"),
    ("withdrawal", "20.00", "b", None, "atm"),        # NW: 5th ATM pays 2.00; HB: free
    ("withdrawal", "2500.00", "b", None, "branch"),   # NW: over 2,500.00 a day; HB: posts
    ("deposit", "100.00", None, "c", "branch"),
    ("withdrawal", "300.00", "c", None, "branch"),    # NW: no overdraft; HB: checking-plus, fee 15.00
    ("deposit", "2000.00", None, "d", "branch"),
    ("withdrawal", "1500.00", "d", None, "branch"),   # NW: posts; HB: new account, held
]

EXPECTED = {
    NORTHWIND: [("posted", None, "0.00"), ("posted", None, "0.00"), ("rejected", "northwind.single_transaction", "0.00"),
                ("held", "northwind.large_transfer_review", "25.00"), ("posted", None, "25.00"),
                ("posted", None, "0.00"), ("posted", None, "0.00"), ("posted", None, "0.00"),
                ("posted", None, "0.00"), ("posted", None, "2.00"),
                ("rejected", "northwind.daily_withdrawal", "0.00"),
                ("posted", None, "0.00"), ("rejected", "core.no_overdraft", "0.00"),
                ("posted", None, "0.00"), ("posted", None, "0.00")],
    HARBOR: [("posted", None, "0.00"), ("posted", None, "0.00"), ("posted", None, "0.00"),
             ("posted", None, "0.00"), ("posted", None, "0.00"),
             ("posted", None, "0.00"), ("posted", None, "0.00"), ("posted", None, "0.00"),
             ("posted", None, "0.00"), ("posted", None, "0.00"),
             ("posted", None, "0.00"),
             ("posted", None, "0.00"), ("posted", None, "15.00"),
             ("posted", None, "0.00"), ("held", "harbor.new_account_review", "0.00")],
}


def test_same_stream_two_institutions_different_outcomes(banks: dict[str, Bank]) -> None:
    start = datetime(2026, 6, 16, 14, 0, tzinfo=UTC)  # 10:00 in New York, 09:00 in Chicago
    got: dict[str, list[tuple[str, str | None, str]]] = {}
    for inst, bank in banks.items():
        for name in ("a", "b", "c"):
            bank.open(name, "checking-plus")
        bank.open("d", "checking-plus", opened_at=start - timedelta(days=2))
        results = []
        for i, (kind, amount, src, dst, channel) in enumerate(STREAM):
            results.append(bank.submit(kind, amount, src=src, dst=dst, channel=channel,
                                       at=start + timedelta(minutes=15 * i), ref=f"stream-{i}"))
        got[inst] = [(r.status, r.code, r.fee_total) for r in results]
        for r in results:  # every decision was made by this institution's own drivers
            assert {x["driver"].split(".")[0] for x in r.reasons} <= {inst, "core"}
    assert got == EXPECTED
    differences = [i for i, (n, h) in enumerate(zip(got[NORTHWIND], got[HARBOR], strict=True)) if n != h]
    assert differences == [2, 3, 4, 9, 10, 12, 14]

    nw, hb = banks[NORTHWIND], banks[HARBOR]
    # Fee income: NW earned 25.00 + 2.00 (the held 25.00 is still pending); HB 15.00.
    assert (nw.fee_income(), hb.fee_income()) == (2700, 1500)
    assert nw.posted("a") == minor("20000.00") - minor("4999.99") - 2500
    assert nw.available("a") == nw.posted("a") - minor("5000.00") - 2500  # the held transfer and its fee
    assert hb.posted("a") == minor("30000.01") - minor("5000.00") - minor("4999.99")
    assert (nw.posted("c"), hb.posted("c")) == (10000, -21500)
    assert (nw.available("d"), hb.available("d")) == (50000, 50000)  # HB's 1,500.00 is reserved
    assert (nw.posted("d"), hb.posted("d")) == (50000, 200000)
    check_ledger(nw.svc, nw.id)
    check_ledger(hb.svc, hb.id, no_overdraft=False)


# ===========================================================================
# Profile versions
# ===========================================================================

def test_transactions_record_the_profile_version_that_decided_them(svc: BankService, nw: Bank, hb: Bank) -> None:
    nw.open("ann")
    day = nw.local(2026, 6, 9, 9)
    first = nw.submit("deposit", "6000.00", dst="ann", at=day)
    assert first.status == "posted" and first.profile_version == 1
    assert svc.txn(nw.id, first.txn_id)["profile_version"] == 1

    doc = changed_profile(NORTHWIND, "limit", "northwind.single_transaction", max="5000.00")
    _profile, version = svc.apply_profile(doc, "risk-officer")
    assert version == 2
    applied = [e for e in svc.audit_log(nw.id, limit=None) if e.action == "profile.applied"]
    assert [(e.subject, e.actor, e.payload["version"]) for e in applied] == [
        ("profile:1", "setup", 1), ("profile:2", "risk-officer", 2)]
    limits = applied[-1].payload["profile"]["limit"]
    assert limits[0] == {"driver": "northwind.single_transaction", "params": {"max": "5000.00"}}
    assert {i["id"]: i["profile_version"] for i in svc.institutions()} == {NORTHWIND: 2, HARBOR: 1}

    # The new version decides from now on; the old transaction keeps version 1.
    over = nw.submit("deposit", "5000.01", dst="ann", at=day + timedelta(hours=1))
    assert over.status == "rejected" and over.code == "northwind.single_transaction"
    assert over.profile_version == 2
    r = reason(over, "northwind.single_transaction")
    assert (r["threshold"], r["observed"]) == ("5000.00 USD", "5000.01 USD")
    assert svc.txn(nw.id, over.txn_id)["profile_version"] == 2
    ok = nw.submit("deposit", "5000.00", dst="ann", at=day + timedelta(hours=2))
    assert ok.status == "posted" and ok.profile_version == 2
    assert svc.txn(nw.id, first.txn_id)["profile_version"] == 1
    # Harbor is untouched.
    hb.open("bob")
    assert hb.submit("deposit", "10.00", dst="bob", at=day).profile_version == 1

    # An invalid profile is refused whole when applied: no version 3.
    bad = changed_profile(NORTHWIND, "limit", "northwind.daily_withdrawal", maximum="1.00")
    with pytest.raises(ProfileError) as caught:
        svc.apply_profile(bad, "risk-officer")
    assert "limit[1].params" in str(caught.value)
    assert {i["id"]: i["profile_version"] for i in svc.institutions()}[NORTHWIND] == 2
