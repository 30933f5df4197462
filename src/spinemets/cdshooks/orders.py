"""A draft imaging order against the pathway: which study it is, and the ACR rating of that study for the patient's
scenario.

* The order's procedure code is looked up in ``tables/order_codes`` (LOINC spine imaging codes): the studies it may be,
  its region and contrast.  A code not in the table is not a spine imaging order spinemets rates (None).
* The rating is the ``acr_ratings`` row of the pathway's ACR variant for that study.  An order whose code leaves the
  contrast open is rated only when every study it may be has the same rating; otherwise no rating, saying why.  A
  study the variant does not rate in the knowledge base, an order outside the variant's region, or a scenario no ACR
  variant in the knowledge base covers gives **no rating, marked not rated** (``not_rated``): the knowledge base
  holds some ACR documents and some of their ratings, not all of them, so it cannot say that no criteria apply (PAMA's
  "no criteria apply" is never claimed); a scenario the pathway cannot yet place (missing inputs) gives no rating and
  names what is missing.
* The PAMA code follows the ACR rating where it is unambiguous: usually appropriate -> appropriate, usually not
  appropriate -> not-appropriate.  "May be appropriate" has no PAMA code here (the knowledge base holds no source for
  one), so no code is given for it, and the result says so.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from spinemets.errors import KnowledgeBaseError
from spinemets.knowledge.loader import KnowledgeBase, load_kb

ORDERS = "order_codes"
RATINGS = "acr_ratings"
PAMA = {"usually_appropriate": "appropriate", "usually_not_appropriate": "not-appropriate"}


class OrderMatch(BaseModel):
    row: str = Field(description="the order_codes row")
    system: str
    code: str
    label: str
    region: str
    contrast: str
    studies: list[str]


class Rating(BaseModel):
    appropriateness: str | None = Field(default=None, description="the ACR rating of the ordered study, or None")
    pama: str | None = Field(default=None, description="appropriate or not-appropriate, or None")
    not_rated: bool = Field(default=False, description="the scenario is placed but the knowledge base holds no ACR "
                                                       "rating for this order in it")
    acr_variant: str | None = None
    why: str
    missing: list[str] = Field(default_factory=list)


def match_order(service_request: dict[str, Any], kb: KnowledgeBase | None = None) -> OrderMatch | None:
    """The spine imaging study a ServiceRequest orders, from its procedure code (None: not one spinemets knows)."""
    kb = kb or load_kb()
    table = kb.table(ORDERS)
    for coding in (service_request.get("code") or {}).get("coding") or []:
        rows = table.where(system=coding.get("system"), code=coding.get("code"))
        if rows:
            r = rows[0]
            return OrderMatch(row=r.id, system=r["system"], code=r["code"], label=r["label"], region=r["region"],
                              contrast=r["contrast"], studies=list(r["studies"]))
    return None


def rate(order: OrderMatch, pathway_result: Any, kb: KnowledgeBase | None = None) -> Rating:
    """The ACR rating of *order* under the scenario of *pathway_result* (see the module docstring)."""
    from spinemets.pathway import LUMBAR_VARIANTS, THORACIC_VARIANTS

    kb = kb or load_kb()
    key = pathway_result.acr_scenario
    if pathway_result.status != "complete":
        # a variant may already be in view, but facts that could change it (the age, the cancer history) are missing
        return Rating(why="the scenario is not yet known well enough to place it in an ACR variant",
                      missing=list(pathway_result.missing))
    if key is None:
        return Rating(not_rated=True, why="no ACR Appropriateness Criteria variant in spinemets' knowledge base covers "
                                          "this scenario (another ACR document may)")
    table = kb.table(RATINGS)
    rows_of_variant = table.where(variant=key)
    if not rows_of_variant:  # the pathway names a variant the ratings table lacks: a knowledge-base error
        raise KnowledgeBaseError([f"acr_ratings: no row of the variant the pathway applies ({key})"])
    variant = str(rows_of_variant[0]["acr_variant"])
    covers = "lumbar" if key in LUMBAR_VARIANTS else ("thoracic" if key in THORACIC_VARIANTS else None)
    if covers is not None and order.region != covers:
        return Rating(not_rated=True, acr_variant=variant,
                      why=f"{variant} is about the {covers} spine; the order is for the "
                          f"{order.region.replace('_', ' ')} spine, which another ACR document may cover")
    if not order.studies:
        return Rating(not_rated=True, acr_variant=variant,
                      why=f"{order.label} is not a study of the pathway that {variant} rates")
    rows = [r for r in table.rows if r["variant"] == key and r["study"] in order.studies]
    rated = {r["study"]: str(r["appropriateness"]) for r in rows}
    if not rated:
        return Rating(not_rated=True, acr_variant=variant,
                      why=f"spinemets' knowledge base holds no rating of {variant} for {order.label}")
    if len(order.studies) > 1 and (len(rated) < len(order.studies) or len(set(rated.values())) > 1):
        labels = {r.id: str(r["label"]) for r in kb.table("imaging_studies").rows}
        words = "; ".join(f"{labels[s]}: {rated.get(s, 'not rated').replace('_', ' ')}" for s in order.studies)
        return Rating(acr_variant=variant, why=f"{order.label} does not say whether contrast is given, and the "
                                               f"ratings differ ({words}): order the study with its contrast")
    appropriateness = next(iter(rated.values()))
    pama = PAMA.get(appropriateness)
    why = f"{variant}: {appropriateness.replace('_', ' ')}"
    if pama is None:
        why += " (no PAMA code is given for 'may be appropriate')"
    return Rating(appropriateness=appropriateness, pama=pama, acr_variant=variant, why=why)
