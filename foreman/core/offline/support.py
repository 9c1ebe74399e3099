"""Offline engines for the customer-service workers: triage, policy matching, the reply.

Rules, not a model: keywords decide the intent, term overlap picks the rules (quoted
verbatim), and the reply applies the quoted rules' numbers (windows, thresholds) to the
order facts the lookup returned.
"""

from __future__ import annotations

import json
import re
from typing import Any

from foreman.core.text import extract_keys, keywords, sentences, tag, tag_blocks

# Checked in order: the first match is the main intent.
INTENT_PATTERNS = [
    ("account_privacy", r"delete (?:my|our) (?:account|data)|personal data|gdpr|privacy"),
    ("damaged_item", r"broken|broke\b|damaged|defective|faulty|cracked|stopped working|"
                     r"doesn'?t work|not working|dented"),
    ("late_delivery", r"\blate\b|delayed|hasn'?t arrived|has not arrived|still waiting|"
                      r"never arrived|not (?:yet )?arrived|promised (?:date|delivery)|"
                      r"took (?:too )?long"),
    ("cancel_order", r"\bcancel"),
    ("address_change", r"change (?:my|the) (?:delivery |shipping )?address|wrong address"),
    ("return_refund", r"\breturn|\brefund|money back|send it back"),
    ("billing", r"charged|double charge|invoice|billing|payment"),
    ("order_status", r"where is|tracking|status of|when will"),
    ("complaint", r"complain|unacceptable|disappointed|terrible|awful"),
]  # fmt: skip
INTENT_TERMS = {
    "return_refund": "return refund window days unused original payment",
    "damaged_item": "damaged defective photo replacement report days return shipping",
    "late_delivery": "late delivery promised shipping fee credit",
    "order_status": "shipping tracking delivery promised",
    "cancel_order": "cancel cancellation processing shipped",
    "address_change": "address change shipment",
    "billing": "payment charge refund",
    "account_privacy": "data deletion privacy request",
    "complaint": "escalation goodwill credit",
    "other": "contact",
}


def classification(system: str, human: str) -> dict[str, Any]:
    """Intent, urgency and identifiers by keyword rules."""
    message = f"{tag(human, 'objective')}\n{tag(human, 'clarification')}"
    low = message.lower()
    found = [name for name, pattern in INTENT_PATTERNS if re.search(pattern, low)]
    intent = found[0] if found else "other"
    angry = bool(re.search(r"!!|unacceptable|ridiculous|furious|worst", low))
    negative = angry or bool(re.search(r"disappoint|broken|late|wrong|still waiting", low))
    keys = extract_keys(message)
    subject = ", ".join(keys.get("order_ids", [])) or "their account"
    return {
        "status": "done",
        "intent": intent,
        "secondary_intents": found[1:3],
        "urgency": "high" if angry or re.search(r"urgent|asap|immediately", low) else "normal",
        "sentiment": "angry" if angry else "negative" if negative else "neutral",
        "emails": keys.get("emails", []),
        "order_ids": keys.get("order_ids", []),
        "summary": f"The customer writes about {subject}: "
        + ", ".join(i.replace("_", " ") for i in [intent, *found[1:3]])
        + ".",
    }


def _intents(human: str) -> list[str]:
    m = re.search(r"intent: (\w+)(?: \(also: ([\w, ]+)\))?", tag(human, "inputs"))
    if not m:
        return [name for name, p in INTENT_PATTERNS if re.search(p, human.lower())][:2] or ["other"]
    return [m.group(1), *[s.strip() for s in (m.group(2) or "").split(",") if s.strip()]]


def policy_decision(system: str, human: str) -> dict[str, Any]:
    """The offered rules that share the most terms with the request's intents, quoted."""
    intents = _intents(human)
    terms = set(keywords(" ".join(INTENT_TERMS.get(i, "") for i in intents)))
    chosen = []
    for attrs, text in tag_blocks(tag(human, "rules"), "rule"):
        rule_terms = set(keywords(f"{attrs.get('title', '')} {text}"))
        shared = terms & rule_terms
        if len(shared) >= 2 or (shared and set(keywords(attrs.get("title", ""))) & terms):
            parts = sentences(text)
            pairs = [" ".join(parts[i : i + 2]) for i in range(max(1, len(parts) - 1))]
            best = max(pairs, key=lambda s: len(terms & set(keywords(s))))
            chosen.append((len(shared), attrs["id"], attrs.get("title", ""), best, shared))
    chosen.sort(key=lambda c: -c[0])
    if not chosen:
        return {"status": "failed", "error": "no offered rule matches the request", "rules": []}
    rules = [
        {
            "rule_id": rid,
            "quote": quote,
            "applies_because": f"{title}: the request concerns {', '.join(sorted(shared))}",
        }
        for _, rid, title, quote, shared in chosen[:4]
    ]
    return {
        "status": "done",
        "rules": rules,
        "summary": f"{len(rules)} rule(s) apply to a {intents[0].replace('_', ' ')} request.",
    }


def _days(quotes: str, *topic: str) -> int | None:
    """The day count in the first quote that mentions every `topic` word."""
    for quote in quotes.split("\n"):
        if all(t in quote.lower() for t in topic):
            if m := re.search(r"(\d+)[- ](?:calendar |business )?days?", quote):
                return int(m.group(1))
    return None


def _money(cents: Any) -> str:
    return f"${int(cents) / 100:,.2f}" if isinstance(cents, int | float) else str(cents)


class _Reply:
    """Sentences of the reply and the facts behind them."""

    def __init__(self, quotes: str, today: str):
        self.quotes, self.today = quotes, today
        self.lines: list[str] = []
        self.approval = False
        self.apologised = False

    def say(self, text: str) -> None:
        self.lines.append(text)

    def sorry(self, text: str) -> None:
        """R16: apologise once."""
        self.say(text if self.apologised else f"I'm sorry {text[0].lower()}{text[1:]}")
        self.apologised = True

    def threshold(self) -> int | None:
        m = re.search(r"above \$(\d[\d,]*)", self.quotes)
        return int(m.group(1).replace(",", "")) * 100 if m else None


def _late(r: _Reply, order: dict[str, Any], tier: str) -> None:
    ship = order.get("shipment") or {}
    promised, delivered = ship.get("promised_by"), ship.get("delivered_at")
    if delivered and ship.get("late"):
        r.sorry(f"that it arrived {ship.get('days_late')} days after the promised date "
                f"({promised}; delivered {delivered}).")  # fmt: skip
        shipping = order.get("shipping_cents") or 0
        if shipping and "shipping fee" in r.quotes:
            r.say(f"Under our late-delivery rule we are refunding the {_money(shipping)} "
                  "shipping fee you paid.")  # fmt: skip
        if tier == "plus" and "store credit" in r.quotes:
            m = re.search(r"(\$\d+) store credit", r.quotes)
            r.say(f"As a Plus member you also receive a {m.group(1) if m else ''} store credit.")
    elif delivered:
        r.say(f"It was delivered on {delivered}, by its promised date of {promised}.")
    elif order.get("status") == "shipped":
        overdue = bool(promised and r.today and r.today > str(promised))
        r.say(f"It is on its way with {ship.get('carrier', 'the carrier')}, tracking number "
              f"{ship.get('tracking_no', '-')}, promised by {promised}."
              + (" As it is past that date, we are opening a trace with the carrier." if overdue
                 else ""))  # fmt: skip


def _change(r: _Reply, order: dict[str, Any], intents: list[str]) -> None:
    what = "cancel it" if "cancel_order" in intents else "change its shipping address"
    if order.get("status") == "processing":
        r.say(f"It hasn't shipped yet, so we can {what} as you asked"
              + (", free of charge, with the full amount refunded to your original payment "
                 "method." if "cancel_order" in intents else "."))  # fmt: skip
    else:
        r.say(f"It has already shipped, so we can no longer {what}"
              + ("; you can return it once it arrives." if "cancel_order" in intents
                 else "; the carrier can help with the tracking number."))  # fmt: skip


def _damaged(r: _Reply, order: dict[str, Any]) -> None:
    days = order.get("days_since_delivery")
    window = _days(r.quotes, "report") or _days(r.quotes, "damaged") or 7
    if days is None:
        r.say("Once it has been delivered, please tell us within "
              f"{window} days if anything is wrong with it.")  # fmt: skip
    elif days <= window:
        r.sorry("that it arrived faulty. You're within our "
                f"{window}-day window for reporting it: please reply with a photo of the item, "
                "and you can choose a free replacement or a full refund of it, with a prepaid "
                "return label from us.")  # fmt: skip
    else:
        r.sorry(f"that it has stopped working. It was delivered {days} days ago, past the "
                f"{window}-day window for damage reports, so I have passed your case to a "
                "supervisor, and you will hear back within 2 business days.")  # fmt: skip
        r.approval = True


def _returnable(r: _Reply, order: dict[str, Any], damaged: bool) -> None:
    days = order.get("days_since_delivery")
    window = _days(r.quotes, "return", "within") or 30
    items = order.get("items", [])
    excluded = [i["name"] for i in items if i.get("final_sale")]
    excluded += [i["name"] for i in items if i.get("perishable") or i.get("personalised")]
    if excluded:
        r.say(f"{', '.join(excluded)} can't be returned (final-sale, perishable or "
              "personalised items are excluded), unless it arrived damaged or wrong.")  # fmt: skip
        if len(excluded) == len(items):
            return
    if days is None:
        r.say("The return window starts when the order is delivered, so it can't be returned "
              "yet.")  # fmt: skip
        return
    if days > window:
        r.say(f"It was delivered {days} days ago, outside our {window}-day return window.")
        return
    if not damaged:
        r.say(f"It was delivered {days} days ago, so it is within our {window}-day return "
              "window: you can return it unused in its original packaging.")  # fmt: skip
        if "$7.95" in r.quotes or "return shipping" in r.quotes:
            r.say("Return shipping is paid by you for returns that aren't faulty items (our "
                  "prepaid label is $7.95, deducted from the refund).")  # fmt: skip
    limit = r.threshold()
    if limit is not None and (order.get("total_cents") or 0) > limit:
        r.approval = True
        r.say(f"As the refund would be over {_money(limit)}, I have submitted it for a "
              "supervisor's review; you will hear back within 2 business days.")  # fmt: skip
    elif timing := re.search(r"within \d+\s*[–-]\s*\d+ business days", r.quotes):
        r.say(f"The refund goes to your original payment method {timing.group(0)} after the "
              "item reaches our warehouse.")  # fmt: skip


def customer_reply(system: str, human: str) -> dict[str, Any]:
    """Apply the quoted rules to the looked-up orders and write the reply."""
    facts = json.loads(tag(human, "facts").replace("&lt;", "<").replace("&gt;", ">") or "{}")
    lookup, policy = facts.get("lookup", {}), facts.get("policy", {})
    # Without a classifier input, triage the message in the objective the same way.
    triage = facts.get("classify") or classification(system, human)
    intents = [triage.get("intent", "other"), *triage.get("secondary_intents", [])]
    rules = policy.get("rules", [])
    customer = lookup.get("customer") or {}
    r = _Reply("\n".join(x.get("quote", "") for x in rules), str(lookup.get("as_of", "")))
    for order in lookup.get("orders", []):
        items = ", ".join(str(i.get("name", i.get("sku"))) for i in order.get("items", []))
        r.say(f"I've looked up your order {order.get('id')} ({items}), which is "
              f"{order.get('status')}.")  # fmt: skip
        if {"late_delivery", "order_status"} & set(intents):
            _late(r, order, str(customer.get("tier", "")))
        if {"cancel_order", "address_change"} & set(intents):
            _change(r, order, intents)
        if "damaged_item" in intents:
            _damaged(r, order)
        if "return_refund" in intents and not r.approval:
            _returnable(r, order, "damaged_item" in intents)
    if "account_privacy" in intents:
        r.say("I've forwarded your request to our privacy team, who complete it within "
              f"{_days(r.quotes, 'privacy') or _days(r.quotes, 'data') or 30} days.")  # fmt: skip
    if lookup.get("mismatch") or lookup.get("not_found"):
        r.say("I can only discuss orders that belong to the account you are writing from; "
              "if an order is yours, please write to us from the email address it was placed "
              "with.")  # fmt: skip
    if not r.lines:
        r.say("I couldn't find an order matching the details you gave; could you send the "
              "order number from your confirmation email?")  # fmt: skip
    name = str(customer.get("name", "")).split(" ")[0] or "there"
    orders = [str(o.get("id")) for o in lookup.get("orders", [])]
    return {
        "status": "done",
        "subject": f"Your order {', '.join(orders)}" if orders else "Your request",
        "body": f"Hi {name},\n\n" + " ".join(r.lines) + "\n\nBest regards,\nCustomer Care",
        "rules_applied": [x["rule_id"] for x in rules],
        "order_ids": orders,
        "needs_approval": r.approval,
        "internal_note": f"Drafted offline by rule; database as of {r.today or 'unknown'}.",
    }
