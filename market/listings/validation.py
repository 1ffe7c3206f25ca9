"""Rules that span several fields of a listing, checked on its whole (merged) state.

Single-field checks (shapes, lengths, codes) live in the schemas' Annotated types, so
a request is rejected before any work. What remains here needs two or more fields or
the calendar: IP form against patent numbers, price or 面议, budget order, date order.
The same functions run on create, on every edit (over the listing after the change,
so a PATCH of one field cannot leave the record contradictory) and on submit.

Problems are collected rather than raised one by one: a form with three mistakes gets
one 422 that names all three fields.
"""

from __future__ import annotations

from datetime import date, timedelta

from market.errors import FieldProblem, InvalidInput
from market.listings import patents
from market.listings.models import PATENT_FORMS, Demand, IpForm, ListingBase, Result

# Dates further ahead than this are almost always typos (2205 for 2025).
FURTHEST_DATE_AHEAD = timedelta(days=366 * 10)


def problem(field: str, message: str, code: str = "invalid") -> FieldProblem:
    return FieldProblem(field=f"body.{field}", message=message, code=code)


def raise_if_any(problems: list[FieldProblem]) -> None:
    if not problems:
        return
    fields = ", ".join(sorted({item.field for item in problems}))
    raise InvalidInput(f"Invalid value for: {fields}", errors=problems)


def result_problems(result: Result, today: date) -> list[FieldProblem]:
    return [
        *patent_problems(result),
        *price_problems(result),
        *validity_problems(result, today),
    ]


def demand_problems(demand: Demand, today: date) -> list[FieldProblem]:
    return [
        *budget_problems(demand),
        *validity_problems(demand, today),
        *deadline_problems(demand, today),
    ]


def patent_problems(result: Result) -> list[FieldProblem]:
    form = IpForm(result.ip_form)
    application, publication = result.patent_application_number, result.patent_publication_number
    if form not in PATENT_FORMS:
        return [
            problem(name, f"a {form.value} is not a patent and carries no patent number")
            for name, value in (
                ("patent_application_number", application),
                ("patent_publication_number", publication),
            )
            if value
        ]
    problems = []
    if not application:
        problems.append(
            problem(
                "patent_application_number",
                f"a {form.value} needs its application number (申请号), e.g. CN201610311380.X",
                "missing",
            )
        )
    elif mismatch := patents.form_mismatch(application, form):
        problems.append(problem("patent_application_number", mismatch, "type_mismatch"))
    if publication and (mismatch := patents.publication_form_mismatch(publication, form)):
        problems.append(problem("patent_publication_number", mismatch, "type_mismatch"))
    return problems


def price_problems(result: Result) -> list[FieldProblem]:
    has_price = result.price_fen is not None
    if has_price == result.price_negotiable:
        return [
            problem(
                "price_fen",
                "give either an asking price in fen (price_fen) or price_negotiable=true "
                "(面议), not both and not neither",
                "price_or_negotiable",
            )
        ]
    return []


def budget_problems(demand: Demand) -> list[FieldProblem]:
    low, high = demand.budget_min_fen, demand.budget_max_fen
    if demand.budget_negotiable:
        if low is not None or high is not None:
            return [
                problem(
                    "budget_negotiable",
                    "a negotiable budget (面议) carries no amounts; drop budget_min_fen and "
                    "budget_max_fen or set budget_negotiable=false",
                    "budget_or_negotiable",
                )
            ]
        return []
    if high is None:
        return [
            problem(
                "budget_max_fen",
                "give a budget (at least budget_max_fen, in fen) or budget_negotiable=true (面议)",
                "budget_or_negotiable",
            )
        ]
    if low is not None and low > high:
        return [
            problem(
                "budget_min_fen",
                f"budget_min_fen ({low}) is larger than budget_max_fen ({high})",
                "range_order",
            )
        ]
    return []


def validity_problems(listing: ListingBase, today: date) -> list[FieldProblem]:
    problems = []
    start, end = listing.valid_from, listing.valid_until
    if start and end and start > end:
        problems.append(
            problem(
                "valid_until", f"valid_until ({end}) is before valid_from ({start})", "date_order"
            )
        )
    for name, value in (("valid_from", start), ("valid_until", end)):
        if value and value > today + FURTHEST_DATE_AHEAD:
            problems.append(problem(name, f"{value} is more than ten years ahead", "too_far"))
    return problems


def deadline_problems(demand: Demand, today: date) -> list[FieldProblem]:
    deadline = demand.deadline
    if deadline is None:
        return []
    if demand.valid_from and deadline < demand.valid_from:
        return [
            problem(
                "deadline",
                f"deadline ({deadline}) is before the demand is valid from ({demand.valid_from})",
                "date_order",
            )
        ]
    if deadline > today + FURTHEST_DATE_AHEAD:
        return [problem("deadline", f"{deadline} is more than ten years ahead", "too_far")]
    return []


def submission_problems(listing: Result | Demand, today: date) -> list[FieldProblem]:
    """Dates that were fine for a draft but cannot go to review once they have passed."""
    problems = []
    if listing.valid_until and listing.valid_until < today:
        problems.append(
            problem(
                "valid_until",
                f"the validity ended on {listing.valid_until}; "
                "extend valid_until before submitting",
                "in_past",
            )
        )
    if isinstance(listing, Demand) and listing.deadline and listing.deadline < today:
        problems.append(
            problem("deadline", f"the deadline {listing.deadline} has passed", "in_past")
        )
    return problems
