"""The scenario: one pydantic model tree holding every parameter of a simulation.

A scenario file (YAML) is an instance of :class:`Scenario`. Units are in field names
(``_min`` minutes, ``_days`` days, ``_usd`` dollars, ``_per_day`` ...) or stated in the
field description. Probabilities and shares are fractions in [0, 1]. Nothing in the engine
holds a business figure as a literal: it reads it from here.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from sim.distributions import Deterministic, Dist, Exponential
from sim.input_checks import LATEST_DATE, InputModel

CHANNELS: tuple[str, ...] = ("chat", "email", "phone", "social")
"""Customer-facing support channels, in the order used for arrays."""

REASONS: tuple[str, ...] = (
    "wismo",
    "delivery_problem",
    "damaged_item",
    "product_question",
    "return_refund",
    "billing",
    "warranty",
)
"""Contact reasons, in the order used for arrays."""

Channel = Literal["chat", "email", "phone", "social"]
Reason = Literal[
    "wismo", "delivery_problem", "damaged_item", "product_question", "return_refund", "billing", "warranty"
]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNeg = Annotated[float, Field(ge=0.0)]
SUM_TOLERANCE = 1e-6
MAX_NAME_LENGTH = 200
"""Longest scenario name: the run store writes ``scenarios/<name>.yaml`` and file names are at
most 255 bytes, with room left for ``cxsim compare``'s ``name@source`` labels."""


class Model(InputModel, BaseModel):  # (BaseModel named again so linters see a pydantic model)
    """Base: unknown keys are errors, instances are immutable; numbers finite and not booleans,
    dates in range (sim.input_checks)."""


def _check_sums_to_one(shares: dict[str, float], what: str) -> None:
    total = sum(shares.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"{what} must sum to 1 (they sum to {total:.6g})")


# ----------------------------------------------------------------------------- demand


class DatedMultiplier(Model):
    """A multiplier applied on the dates start..end inclusive."""

    name: str = ""
    start: dt.date
    end: dt.date
    multiplier: float = Field(gt=0, description="Factor applied to the base rate on these dates.")

    @model_validator(mode="after")
    def _ordered(self) -> DatedMultiplier:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Demand(Model):
    """New-customer acquisition and order values."""

    new_customers_per_day: float = Field(
        ge=0, description="Off-peak mean acquisitions per day (Poisson), before weekday and peak factors."
    )
    weekday_factors: list[NonNeg] = Field(
        default=[1.0] * 7, min_length=7, max_length=7, description="Multipliers Monday..Sunday."
    )
    hour_weights: list[NonNeg] = Field(
        default=[1.0] * 24,
        min_length=24,
        max_length=24,
        description="Relative order intensity by hour of day 0..23 (normalised internally).",
    )
    annual_growth: float = Field(default=0.0, ge=-0.9, le=10, description="Trend: +0.2 means +20% per year.")
    peaks: list[DatedMultiplier] = Field(default=[], description="Holiday and campaign uplifts (they multiply).")
    cac_usd: NonNeg = Field(description="Customer acquisition cost per paid new customer, dollars.")
    order_value_usd: Dist = Field(description="Order value (gross merchandise, dollars) distribution.")
    initial_customers: int = Field(
        default=0, ge=0, description="Existing customers at the start (not in any acquisition cohort)."
    )
    acquisition_end: dt.date | None = Field(
        default=None,
        description="Closed cohort: from this date on no new customers arrive (paid or referred); the "
        "customers acquired before it keep buying and dropping out. None: acquisition never stops.",
    )
    referral_probability_per_promoter: Probability = Field(
        default=0.0, description="Chance a promoter's survey answer brings one referred customer (no CAC)."
    )
    referral_delay_days: Dist = Field(default=Exponential(mean=14.0))

    @model_validator(mode="after")
    def _hours(self) -> Demand:
        if sum(self.hour_weights) <= 0:
            raise ValueError("hour_weights must have a positive sum")
        return self


class Repurchase(Model):
    """Repeat purchase and dropout: the BG/NBD process, shifted by experience.

    Each customer has a purchase rate lambda ~ Gamma(shape r, rate alpha) per day and a dropout
    probability p ~ Beta(a, b). At each would-be next purchase the customer drops out with
    probability sigmoid(logit(p) - sentiment + program shifts), otherwise orders.
    """

    enabled: bool = True
    rate_shape_r: float = Field(gt=0, description="Gamma shape r of the purchase rate.")
    rate_scale_alpha_days: float = Field(gt=0, description="Gamma rate alpha (days); mean rate r/alpha per day.")
    dropout_a: float = Field(gt=0, description="Beta a of the per-purchase dropout probability.")
    dropout_b: float = Field(gt=0, description="Beta b of the per-purchase dropout probability.")
    peak_sensitivity: Probability = Field(
        default=0.0,
        description="Share of each demand.peaks uplift that applies to existing customers' purchase rate: "
        "on peak dates the rate is multiplied by 1 + s x (multiplier - 1).",
    )
    initial_repeat_purchases: int = Field(
        default=2,
        ge=0,
        description="Repeat purchases existing customers (demand.initial_customers) have already made; "
        "their dropout probability is drawn from the BG/NBD posterior Beta(a, b + this).",
    )


# ----------------------------------------------------------------------------- fulfilment & delivery


class Fulfilment(Model):
    processing_days: Dist = Field(description="Order to shipment, days.")
    promise_days: float = Field(gt=0, description="Delivery promise shown at checkout, days after the order.")
    promise_padding_days: NonNeg = Field(default=0.0, description="Extra days added to the promise.")
    cogs_share: Probability = Field(description="Cost of goods as a share of order value.")
    shipping_cost_usd: NonNeg = Field(description="Outbound shipping paid by the brand per shipment.")
    fulfilment_cost_usd: NonNeg = Field(default=0.0, description="Pick, pack and handling per shipment.")


class DeliveryOutcomes(Model):
    """Shares of shipments by outcome; they sum to 1."""

    on_time: Probability
    late: Probability
    failed_attempt: Probability
    lost: Probability
    damaged: Probability

    @model_validator(mode="after")
    def _sum(self) -> DeliveryOutcomes:
        _check_sums_to_one(self.model_dump(), "delivery outcome shares")
        return self


class Carrier(Model):
    name: str = "carrier"
    transit_days: Dist = Field(description="Shipment to delivery when on time, days.")
    outcomes: DeliveryOutcomes
    late_extra_days: Dist = Field(description="Extra transit days of a late shipment.")
    failed_attempt_extra_days: Dist = Field(default=Deterministic(mean=2.0))
    lost_detect_days: Dist = Field(
        default=Deterministic(mean=7.0), description="Days after the due date when a lost parcel is declared lost."
    )
    degradation: list[DatedMultiplier] = Field(
        default=[], description="Peak periods in which late/failed/lost shares are multiplied (on-time absorbs)."
    )
    reship_lost_or_damaged: bool = Field(default=True, description="Lost and damaged orders are reshipped.")


class Notifications(Model):
    shipping_notifications: bool = Field(default=True, description="Shipping confirmation with a tracking link.")
    wismo_reduction_shipping: Probability = Field(
        default=0.3, description="Share of on-time WISMO contacts avoided by shipping notifications."
    )
    delay_alerts: bool = Field(default=False, description="Proactive alert when a shipment will be late.")
    wismo_reduction_delay_alert: Probability = Field(
        default=0.6, description="Share of WISMO contacts avoided on late shipments when alerted."
    )
    delay_alert_sentiment_mitigation: Probability = Field(
        default=0.5, description="Share of a late delivery's sentiment hit removed by an alert."
    )
    cost_per_alert_usd: NonNeg = Field(default=0.02)


class Onboarding(Model):
    enabled: bool = False
    learning_curve_share: Probability = Field(
        default=0.3, description="Share of orders with a product that has a learning curve."
    )
    howto_contact_reduction: Probability = Field(
        default=0.4, description="Share of product-question contacts avoided on those orders."
    )
    user_error_return_reduction: Probability = Field(
        default=0.3, description="Share of user-error returns avoided on those orders."
    )
    cost_per_order_usd: NonNeg = 0.0


# ----------------------------------------------------------------------------- contacts


class ChannelMix(Model):
    chat: Probability = 0.0
    email: Probability = 0.0
    phone: Probability = 0.0
    social: Probability = 0.0

    @model_validator(mode="after")
    def _sum(self) -> ChannelMix:
        _check_sums_to_one(self.model_dump(), "channel_mix shares")
        return self


class ReasonConfig(Model):
    """One contact reason. What triggers it is fixed per reason (see README):

    - wismo: the shipment; ``probability`` when on time, ``probability_if_issue`` when late or failed.
    - delivery_problem: a failed attempt or lost parcel (``probability``).
    - damaged_item: a damaged or defective delivery (``probability``).
    - product_question: the delivery (``probability``); onboarding removes part.
    - return_refund: a return request (``probability``); a refund slower than the policy threshold
      adds one with ``probability_if_issue``.
    - billing: the order (``probability``).
    - warranty: a warranty claim (``probability``).
    """

    probability: Probability
    probability_if_issue: Probability = 0.0
    delay_hours: Dist = Field(description="Trigger to contact, hours.")
    channel_mix: ChannelMix
    containment: Probability = Field(
        default=0.0, description="Share contained by self-service / automated assistant (when automation is on)."
    )
    handle_time_min: dict[Channel, Dist] = Field(description="Agent handle time per channel, minutes.")
    first_contact_resolution: Probability = Field(default=0.8)
    escalation: Probability = Field(default=0.0, description="Share of answered contacts escalated to tier 2.")
    repeat_delay_hours: Dist = Field(default=Exponential(mean=24.0), description="Unresolved to next contact.")

    @model_validator(mode="after")
    def _handle_times(self) -> ReasonConfig:
        used = [c for c, share in self.channel_mix.model_dump().items() if share > 0]
        missing = [c for c in used if c not in self.handle_time_min]
        if missing:
            raise ValueError(f"handle_time_min has no entry for channel(s) {missing} used in channel_mix")
        return self


class StaffingPlan(Model):
    """Agents scheduled (paid, before shrinkage) from ``start`` until the next plan.

    Give either ``agents_by_hour`` (24 values, hour of day) or ``agents_by_interval`` (one value per
    staffing interval of the day: 48 at ``interval_min: 30``), as the planner writes.
    """

    start: dt.date
    agents_by_hour: list[NonNeg] | None = Field(default=None, min_length=24, max_length=24)
    agents_by_interval: list[NonNeg] | None = Field(
        default=None, min_length=24, max_length=96, description="Agents per staffing interval of the day."
    )
    weekday_factors: list[NonNeg] = Field(default=[1.0] * 7, min_length=7, max_length=7)
    premium_cost_usd_per_day: NonNeg = Field(
        default=0.0,
        description="Overtime premium paid on each day the plan is in force, USD (the planner writes it "
        "for its shifts' hours beyond planner.shifts.overtime_after_h); booked as labour.",
    )

    @model_validator(mode="after")
    def _one_profile(self) -> StaffingPlan:
        if (self.agents_by_hour is None) == (self.agents_by_interval is None):
            raise ValueError("give exactly one of agents_by_hour and agents_by_interval")
        return self

    def by_interval(self, interval_min: float) -> list[float]:
        """Agents per interval of the day at ``interval_min`` (hourly values repeated)."""
        if self.agents_by_interval is not None:
            return list(self.agents_by_interval)
        per_hour = int(60 // interval_min)
        assert self.agents_by_hour is not None
        return [a for a in self.agents_by_hour for _ in range(per_hour)]


class SeasonalHires(Model):
    """Temporary agents added on dates start..end, reaching full productivity after ramp_days."""

    start: dt.date
    end: dt.date
    agents_by_hour: list[NonNeg] = Field(min_length=24, max_length=24)
    ramp_days: NonNeg = Field(default=14.0, description="Days from 50% to 100% productivity.")
    hourly_cost_usd: NonNeg | None = Field(default=None, description="Defaults to the channel's hourly cost.")


class Overtime(Model):
    start: dt.date
    end: dt.date
    extra_share: float = Field(gt=0, le=1, description="Extra paid hours as a share of scheduled hours.")
    cost_multiplier: float = Field(default=1.5, ge=1)


class ChannelConfig(Model):
    """An agent pool serving one channel."""

    realtime: bool = Field(description="True: customers wait live and may abandon; False: a backlog (email).")
    sla_threshold_min: float = Field(gt=0, description="Answer / first-response threshold, minutes.")
    sla_target: Probability = Field(description="Target share answered within the threshold.")
    concurrency: int = Field(default=1, ge=1, le=6, description="Contacts an agent works at once (chat).")
    patience_min: Dist | None = Field(default=None, description="Time a realtime customer waits before abandoning.")
    retry_after_abandon: Probability = Field(default=0.0, description="Share of abandoners who try again.")
    retry_delay_hours: Dist = Field(default=Exponential(mean=2.0))
    shrinkage: float = Field(
        default=0.3,
        ge=0,
        lt=1,
        description="Paid time not available (breaks, training). Servers per interval = "
        "rint(paid agents x (1 - shrinkage) x concurrency): e.g. 3 chat agents at 30% and concurrency 2 -> 4 slots.",
    )
    hourly_cost_usd: NonNeg = Field(description="Loaded cost per paid agent hour.")
    staffing: list[StaffingPlan] = Field(min_length=1)
    seasonal_hires: list[SeasonalHires] = []
    overtime: list[Overtime] = []

    @model_validator(mode="after")
    def _patience(self) -> ChannelConfig:
        if self.realtime and self.patience_min is None:
            raise ValueError("a realtime channel needs patience_min")
        starts = [p.start for p in self.staffing]
        if starts != sorted(starts):
            raise ValueError("staffing plans must be in date order")
        return self


class Tier2(Model):
    """Second-tier team: escalations queue here as a backlog."""

    handle_time_min: Dist
    sla_threshold_min: float = Field(default=1440.0, gt=0)
    sla_target: Probability = 0.8
    shrinkage: float = Field(default=0.35, ge=0, lt=1)
    hourly_cost_usd: NonNeg
    staffing: list[StaffingPlan] = Field(min_length=1)


class Automation(Model):
    enabled: bool = False
    contained_come_back: Probability = Field(
        default=0.3, description="Share of contained customers who still come back to a human later."
    )
    come_back_delay_hours: Dist = Field(default=Exponential(mean=4.0))
    cost_per_automated_contact_usd: NonNeg = 0.0
    platform_cost_per_month_usd: NonNeg = 0.0
    agent_assist_handle_time_reduction: float = Field(default=0.0, ge=0, lt=1)


class ContactArrivals(Model):
    """Contacts that arrive on their own, not triggered by an order: a Poisson stream per day.

    What ``cxsim calibrate`` fits from a contacts log without orders. Each day brings
    Poisson(``per_day`` x weekday factor x peaks) contacts, at hours drawn from
    ``contacts.hour_weights`` (uniform when absent), with a reason and a channel drawn independently
    from ``reason_mix`` and ``channel_mix``; they meet automation (containment per reason) and the
    agent pools like triggered contacts. They have no customer or order, so they move no sentiment.
    """

    per_day: NonNeg = Field(description="Mean contacts per day before weekday factors and peaks (mean over the week when the factors average 1).")
    weekday_factors: list[NonNeg] = Field(default=[1.0] * 7, min_length=7, max_length=7, description="Multipliers Monday..Sunday.")
    peaks: list[DatedMultiplier] = Field(default=[], description="Dated multipliers of the stream (they multiply).")
    reason_mix: dict[Reason, Probability] = Field(min_length=1, description="Share of each reason (sums to 1).")
    channel_mix: ChannelMix
    follow_ups: bool = Field(
        default=False,
        description="False: the stream is the whole logged volume (a log without order links cannot tell "
        "first contacts from repeats and retries), so its contacts make no repeat, retry, escalation or "
        "come-back contacts. True: they are first contacts and follow up like triggered ones.",
    )

    @model_validator(mode="after")
    def _mix(self) -> ContactArrivals:
        _check_sums_to_one({str(k): v for k, v in self.reason_mix.items()}, "contacts.arrivals.reason_mix shares")
        return self


class Contacts(Model):
    hour_weights: list[NonNeg] | None = Field(
        default=None,
        min_length=24,
        max_length=24,
        description="Relative contact intensity by hour of day. When set, a triggered contact keeps the day "
        "of trigger + delay and takes its hour from this profile (a day later if that would precede the "
        "trigger). When absent, contacts arrive exactly at trigger + delay.",
    )
    reasons: dict[Reason, ReasonConfig]
    channels: dict[Channel, ChannelConfig]
    tier2: Tier2 | None = None
    arrivals: ContactArrivals | None = Field(
        default=None, description="Contacts not triggered by orders (a contacts-only calibration), or none."
    )

    @model_validator(mode="after")
    def _channels_exist(self) -> Contacts:
        if self.arrivals is not None:
            channels = [ch for ch, v in self.arrivals.channel_mix.model_dump().items() if v > 0]
            for ch in channels:
                if ch not in self.channels:
                    raise ValueError(f"contacts.arrivals sends contacts to channel {ch}, which has no channels entry")
            for reason, share in self.arrivals.reason_mix.items():
                cfg = self.reasons.get(reason)  # type: ignore[call-overload]
                if share > 0 and cfg is None:
                    raise ValueError(f"contacts.arrivals.reason_mix has reason {reason}, which has no reasons entry")
                if share > 0 and cfg is not None and (miss := [ch for ch in channels if ch not in cfg.handle_time_min]):
                    raise ValueError(f"contacts.arrivals: reason {reason} has no handle_time_min for channel(s) {miss}")
        for reason, cfg in self.reasons.items():
            for ch, share in cfg.channel_mix.model_dump().items():
                if share > 0 and ch not in self.channels:
                    raise ValueError(f"reason {reason} sends contacts to channel {ch}, which has no channels entry")
            if cfg.escalation > 0 and self.tier2 is None:
                raise ValueError(f"reason {reason} escalates to tier 2 but there is no tier2 section")
        return self


# ----------------------------------------------------------------------------- returns & warranty


class Category(Model):
    share: Probability = Field(description="Share of orders in this category.")
    return_probability: Probability = Field(description="Chance an order is returned (nothing went wrong).")
    user_error_share: Probability = Field(default=0.1, description="Share of its returns caused by user error.")


class Returns(Model):
    categories: dict[str, Category] = Field(min_length=1)
    window_days: float = Field(gt=0, description="Days after delivery a return is accepted.")
    request_lag_days: Dist = Field(description="Delivery to return request, days (later ones are refused).")
    damaged_return_probability: Probability = Field(
        default=0.5, description="Chance a damaged order is returned for refund instead of reshipped."
    )
    free_returns: bool = True
    return_fee_usd: NonNeg = Field(default=0.0, description="Fee charged to the customer when returns are not free.")
    free_returns_uplift: float = Field(default=1.1, ge=0, description="Return-rate multiplier when returns are free.")
    return_shipping_cost_usd: NonNeg = Field(description="Label cost paid by the brand per return.")
    processing_cost_usd: NonNeg = Field(default=2.0, description="Receive, inspect, restock per return.")
    writeoff_share: Probability = Field(default=0.15, description="Share of returned goods not resellable.")
    transit_back_days: Dist = Field(default=Exponential(mean=5.0))
    exchange_share: Probability = Field(default=0.15, description="Share of returns that become exchanges.")
    store_credit_share: Probability = Field(default=0.05, description="Share of returns refunded as store credit.")
    exchange_first: bool = Field(default=False, description="Offer an exchange (with a bonus) before a refund.")
    exchange_first_conversion: Probability = Field(
        default=0.2, description="Share of refund requests moved to exchange by exchange-first."
    )
    exchange_bonus_usd: NonNeg = Field(default=0.0)
    refund_delay_days: Dist = Field(description="Return received to refund issued, days.")
    refund_contact_threshold_days: float = Field(
        default=7.0, gt=0, description="A refund slower than this triggers a return_refund contact (probability_if_issue)."
    )

    @model_validator(mode="after")
    def _shares(self) -> Returns:
        _check_sums_to_one({k: c.share for k, c in self.categories.items()}, "returns.categories shares")
        if self.exchange_share + self.store_credit_share > 1:
            raise ValueError("exchange_share + store_credit_share must not exceed 1")
        return self


class Warranty(Model):
    claim_probability: Probability = 0.0
    lag_days: Dist = Field(default=Exponential(mean=120.0))
    cost_usd: NonNeg = Field(default=0.0, description="Repair or replacement cost per claim.")


# ----------------------------------------------------------------------------- experience & loyalty


class Effects(Model):
    """Shifts of a customer's sentiment (log-odds of staying) per event. Negative hurts."""

    delivery_on_time: float = 0.05
    delivery_late: float = -0.4
    failed_attempt: float = -0.5
    lost: float = -1.2
    damaged: float = -0.9
    contact_resolved: float = 0.05
    contact_unresolved: float = -0.3
    contact_abandoned: float = -0.4
    wait_per_sla_multiple: float = Field(default=-0.05, description="Per multiple of the SLA threshold waited.")
    return_free: float = 0.15
    return_paid: float = -0.2
    return_refused: float = -0.6
    exchange: float = 0.1
    refund_late: float = -0.3
    appeasement: float = 0.3
    warranty_claim: float = -0.2


class Experience(Model):
    effects: Effects = Effects()
    memory: Probability = Field(
        default=0.7, description="Share of sentiment carried over at each new order (the rest fades)."
    )
    csat_intercept: float = Field(default=1.8, description="Log-odds of 'satisfied' for a resolved, instant answer.")
    csat_wait_coef: float = Field(default=-0.4, description="Per multiple of the SLA threshold waited.")
    csat_unresolved_coef: float = Field(default=-1.5)
    survey_response_rate: Probability = 0.2
    nps_survey_rate: Probability = Field(default=0.3, description="Share of orders surveyed for NPS after delivery.")
    nps_survey_delay_days: NonNeg = Field(default=7.0, description="Expected delivery to NPS survey, days.")
    nps_intercept: float = Field(default=0.3, description="Mean latent score of a neutral customer.")
    nps_noise_sd: float = Field(default=1.0, gt=0)
    nps_promoter_threshold: float = 0.8
    nps_detractor_threshold: float = -0.6


class Points(Model):
    type: Literal["points"] = "points"
    earn_share: Probability = Field(default=0.05, description="Reward value earned per dollar spent.")
    redemption_rate: Probability = Field(default=0.6, description="Share of earned value ever redeemed.")
    dropout_logit_shift: float = -0.2
    rate_multiplier: float = Field(default=1.05, gt=0)


class Tiers(Model):
    type: Literal["tiers"] = "tiers"
    min_orders: list[int] = Field(description="Orders needed for each tier, ascending.", min_length=1)
    dropout_logit_shift: list[float] = Field(min_length=1)
    rate_multiplier: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)
    perk_cost_per_order_usd: list[NonNeg] = Field(min_length=1)

    @model_validator(mode="after")
    def _aligned(self) -> Tiers:
        n = len(self.min_orders)
        for name in ("dropout_logit_shift", "rate_multiplier", "perk_cost_per_order_usd"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} needs one value per tier ({n})")
        if self.min_orders != sorted(self.min_orders):
            raise ValueError("min_orders must be ascending")
        return self


class Membership(Model):
    type: Literal["membership"] = "membership"
    fee_per_year_usd: NonNeg
    uptake_probability: Probability = Field(description="Chance a non-member joins at an order.")
    dropout_logit_shift: float = -0.6
    rate_multiplier: float = Field(default=1.25, gt=0)
    perk_cost_per_order_usd: NonNeg = Field(default=0.0, description="e.g. free express shipping.")


class Winback(Model):
    lapse_days: float = Field(default=90.0, gt=0, description="Days since the last order that define lapsed.")
    cost_per_message_usd: NonNeg = 0.05
    response_probability: Probability = Field(description="Chance a lapsed customer orders because of it.")
    response_delay_days: Dist = Field(default=Exponential(mean=7.0))
    discount_share: Probability = Field(default=0.15, description="Discount on the win-back order.")


class Appeasement(Model):
    credit_usd: NonNeg = 10.0
    on_late: Probability = 0.0
    on_lost_or_damaged: Probability = 0.0
    on_unresolved_contact: Probability = 0.0


class Loyalty(Model):
    program: Annotated[Points | Tiers | Membership, Field(discriminator="type")] | None = None
    program_cost_per_month_usd: NonNeg = 0.0
    winback: Winback | None = None
    appeasement: Appeasement = Appeasement()


class Subscription(Model):
    """Subscription program (subscribe & save): recurring orders with contractual churn.

    A customer who has never subscribed may subscribe at an order (``uptake_first_order`` at a new
    customer's first order, ``uptake_repeat_order`` at any later one-off order); that order stays a
    one-off order and the first renewal falls ``cadence_days`` after it. A customer subscribes at
    most once: after a cancellation they remain a one-off customer.

    At subscription each subscriber draws a cancellation probability theta ~ Beta(cancel_alpha,
    cancel_beta) (shifted-beta-geometric, Fader & Hardie 2007). At every renewal the subscriber
    cancels with probability sigmoid(logit(theta) - sentiment_weight x sentiment) -- the same
    experience shift as the repurchase dropout; otherwise pauses with ``pause_probability`` (no
    order for ``pause_cycles`` renewals, the next decision that much later), otherwise skips this
    delivery with ``skip_probability``, otherwise receives a subscription order of ``price_usd``
    (gross merchandise value) at ``discount_share`` off, which goes through the same journey as
    any order. With sentiment_weight 0 the share still subscribed after t renewals is
    B(cancel_alpha, cancel_beta + t) / B(cancel_alpha, cancel_beta).
    """

    enabled: bool = Field(default=False, description="Offer the subscription (false: nobody subscribes).")
    uptake_first_order: Probability = Field(
        default=0.0, description="Chance a new customer subscribes at their first order."
    )
    uptake_repeat_order: Probability = Field(
        default=0.0,
        description="Chance a customer who never subscribed subscribes at a later one-off order "
        "(repeat or win-back; existing customers included).",
    )
    cadence_days: float = Field(default=30.0, gt=0, le=365, description="Days between renewals.")
    price_usd: float = Field(
        default=50.0, gt=0, description="Gross merchandise value of a subscription order, dollars."
    )
    discount_share: Probability = Field(default=0.0, description="Discount on every subscription order.")
    skip_probability: Probability = Field(
        default=0.0, description="Chance a kept, unpaused renewal's delivery is skipped (still subscribed, no order)."
    )
    pause_probability: Probability = Field(
        default=0.0, description="Chance a kept renewal starts a pause instead of an order."
    )
    pause_cycles: int = Field(
        default=2, ge=1, le=24, description="Deliveries a pause misses (the pausing renewal's included): the "
        "next renewal decision comes pause_cycles x cadence_days after the one that paused."
    )
    cancel_alpha: float = Field(
        default=1.0, gt=0, le=1e4, description="Beta alpha of the per-renewal cancellation probability theta."
    )
    cancel_beta: float = Field(
        default=1.0, gt=0, le=1e4,
        description="Beta beta of theta; mean cancellation at the first renewal alpha / (alpha + beta) "
        "(the default Beta(1, 1) is uniform: set both from your retention curve).",
    )
    sentiment_weight: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="Weight of the customer's sentiment in the cancellation log-odds (1: as in the "
        "repurchase dropout; 0: experience does not move cancellations).",
    )


# ----------------------------------------------------------------------------- incidents


class CarrierMeltdown(Model):
    kind: Literal["carrier_meltdown"] = "carrier_meltdown"
    start: dt.date
    end: dt.date
    on_time_share: Probability = Field(description="On-time share during the incident; the rest becomes late.")


class DefectiveBatch(Model):
    kind: Literal["defective_batch"] = "defective_batch"
    start: dt.date
    end: dt.date
    defective_share: Probability = Field(description="Share of orders placed on these dates that arrive faulty.")


class DemandSpike(Model):
    kind: Literal["demand_spike"] = "demand_spike"
    start: dt.date
    end: dt.date
    multiplier: float = Field(gt=0)


class HelpdeskOutage(Model):
    kind: Literal["helpdesk_outage"] = "helpdesk_outage"
    start: dt.datetime
    end: dt.datetime
    channels: list[Channel] = Field(default=["chat", "email", "phone", "social"], min_length=1)


Incident = Annotated[CarrierMeltdown | DefectiveBatch | DemandSpike | HelpdeskOutage, Field(discriminator="kind")]


# ----------------------------------------------------------------------------- scenario


# ----------------------------------------------------------------------------- staffing planner

Pool = Literal["chat", "email", "phone", "social", "tier2"]


class ShiftType(Model):
    """A kind of shift a team can work (e.g. a full-time 8 h shift with a 30-minute meal break)."""

    name: str = Field(min_length=1, max_length=40)
    length_h: float = Field(gt=0, le=16, description="Start to end, hours, the break included.")
    break_min: int = Field(default=0, ge=0, le=120, description="Unpaid meal break, minutes (0: none).")
    break_earliest_h: float = Field(default=2.0, ge=0, description="Earliest break start, hours after the shift start.")
    break_latest_h: float = Field(default=5.0, ge=0, description="Latest break start, hours after the shift start.")
    earliest_start_h: float = Field(default=0.0, ge=0, lt=24, description="Earliest start, hour of day.")
    latest_start_h: float = Field(default=23.5, ge=0, lt=24, description="Latest start, hour of day.")
    part_time: bool = Field(default=False, description="Counts toward shifts.part_time_max_share.")
    min_agents: int = Field(default=0, ge=0, description="Agents on a start time if it is used at all.")
    max_agents_per_day: int | None = Field(default=None, ge=0, description="Agents on this shift type per day.")

    @model_validator(mode="after")
    def _windows(self) -> ShiftType:
        if self.latest_start_h < self.earliest_start_h:
            raise ValueError("latest_start_h is before earliest_start_h")
        if self.break_min:
            if self.break_latest_h < self.break_earliest_h:
                raise ValueError("break_latest_h is before break_earliest_h")
            if self.break_latest_h * 60 + self.break_min > self.length_h * 60:
                raise ValueError("the latest break does not end inside the shift")
        return self


def _default_shift_types() -> list[ShiftType]:
    return [
        ShiftType(name="full_8h", length_h=8.5, break_min=30, break_earliest_h=3.0, break_latest_h=5.0),
        ShiftType(name="part_6h", length_h=6.0, part_time=True),
        ShiftType(name="part_4h", length_h=4.0, part_time=True),
    ]


class Shifts(Model):
    """Rules that turn per-interval requirements into shifts (solved as a MILP, cost minimised)."""

    types: list[ShiftType] = Field(default_factory=_default_shift_types, min_length=1)
    start_step_min: int = Field(default=30, ge=15, le=240, description="Shift starts fall on this grid, minutes.")
    part_time_max_share: Probability = Field(
        default=1.0,
        description="Most agent-shifts per day that may be part-time shifts (1: no cap). A binding cap on "
        "a 24/7 pool weakens the MILP's bound: plans then often stop at time_limit_s with a gap of 5-15%.",
    )
    overtime_after_h: float = Field(default=8.0, gt=0, le=24, description="Paid hours of a shift beyond this earn the premium.")
    overtime_multiplier: float = Field(default=1.5, ge=1, le=5)
    block_days: int = Field(default=7, ge=1, le=31, description="Days solved together (shifts may cross midnight).")
    time_limit_s: float = Field(default=10.0, gt=0, le=600, description="Solver time limit per block.")
    mip_rel_gap: float = Field(
        default=0.01, ge=0, le=0.5,
        description="The solver stops once a plan's cost is proven within this share of the optimum "
        "(0: prove optimality, which can take long on 24/7 pools with a binding part-time share).",
    )


class PoolTargets(Model):
    """What the planner must reach on one pool, beyond the channel's own SLA threshold and target."""

    sla_target: Probability | None = Field(default=None, description="Overrides the channel's sla_target.")
    max_abandonment: Probability | None = Field(default=None, description="Cap on the share abandoning (realtime).")
    max_occupancy: Probability | None = Field(default=None, description="Cap on busy / staffed time.")
    open_hours: tuple[float, float] | None = Field(
        default=None,
        description="Hours of day [open, close) the pool is staffed; close may exceed 24 (overnight). "
        "Default: the intervals where the scenario's own staffing has agents.",
    )
    min_agents: int = Field(default=0, ge=0, description="Paid agents at least, while open.")

    @model_validator(mode="after")
    def _hours(self) -> PoolTargets:
        if self.open_hours is not None:
            lo, hi = self.open_hours
            if not (0 <= lo < 24 and lo < hi <= lo + 24):
                raise ValueError("open_hours must be [open, close) with 0 <= open < 24 and open < close <= open + 24")
        return self


class Planner(Model):
    """Staffing planner. ``mode: planned`` makes ``cxsim run`` plan the pools' staffing first."""

    mode: Literal["fixed", "planned"] = Field(
        default="fixed", description="fixed: simulate the staffing as written; planned: plan it, then simulate."
    )
    pools: list[Pool] | None = Field(default=None, description="Pools to plan (default: every staffed pool).")
    window_start: dt.date | None = Field(default=None, description="First day planned (default: the scenario start).")
    window_end: dt.date | None = Field(default=None, description="Last day planned, inclusive (default: the horizon end).")
    targets: dict[Pool, PoolTargets] = {}
    replications: int = Field(
        default=2, ge=1, le=50,
        description="Replications of the whole journey whose contacts the plan is refined on.",
    )
    max_iterations: int = Field(
        default=20, ge=0, le=50,
        description="Refinement rounds (0: analytic only). A round replays the recorded contacts through the "
        "candidate plan's agent pools (a second or two for a 487-day scenario) and raises every open interval "
        "(realtime) or day (backlog) whose service level is below target.",
    )
    check_replications: int = Field(
        default=3, ge=1, le=100,
        description="Replications of the final check, which simulates the whole journey with the scheduled plan "
        "and with the per-interval Erlang plan side by side, on random paths of its own.",
    )
    miss_z: float = Field(
        default=1.645,
        ge=0,
        le=5,
        description="Reports also count an interval (or day) as 'not significantly below' its target unless its "
        "simulated service level is below the target by more than miss_z standard errors (binomial, on the "
        "arrivals simulated): one-sided 5% by default, the test of whether a miss is more than noise.",
    )
    include_incidents: bool = Field(
        default=False, description="Plan for the scenario's incidents too (they are usually not foreseen)."
    )
    shifts: Shifts = Shifts()

    @model_validator(mode="after")
    def _window(self) -> Planner:
        if self.window_start and self.window_end and self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        return self


class Finance(Model):
    monthly_discount_rate: float = Field(default=0.01, ge=0, le=0.5, description="For LTV discounting.")
    ltv_horizon_months: int = Field(default=12, ge=1, le=60)


class Scenario(Model):
    """A complete, validated simulation scenario."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    start_date: dt.date
    horizon_days: int = Field(gt=0, le=3650)
    interval_min: Literal[15, 30, 60] = 30
    demand: Demand
    repurchase: Repurchase
    fulfilment: Fulfilment
    carrier: Carrier
    notifications: Notifications = Notifications()
    onboarding: Onboarding = Onboarding()
    contacts: Contacts
    automation: Automation = Automation()
    returns: Returns
    warranty: Warranty = Warranty()
    experience: Experience = Experience()
    loyalty: Loyalty = Loyalty()
    subscription: Subscription = Subscription()
    incidents: list[Incident] = []
    finance: Finance = Finance()
    planner: Planner = Planner()
    provenance: dict[str, object] | None = Field(
        default=None, description="Where fitted values came from (written by calibration)."
    )

    @property
    def end_date(self) -> dt.date:
        """First date after the horizon."""
        return self.start_date + dt.timedelta(days=self.horizon_days)

    @field_validator("horizon_days")
    @classmethod
    def _horizon_in_range(cls, days: int, info: ValidationInfo) -> int:
        start = info.data.get("start_date")  # absent when start_date itself is invalid
        if isinstance(start, dt.date) and start + dt.timedelta(days=days - 1) > LATEST_DATE:
            raise ValueError(
                f"the horizon would end on {start + dt.timedelta(days=days - 1)} "
                f"(start_date {start} + {days} days), after {LATEST_DATE}"
            )
        return days

    @model_validator(mode="after")
    def _coverage(self) -> Scenario:
        pools = {f"contacts.channels.{c}": cfg.staffing for c, cfg in self.contacts.channels.items()}
        if self.contacts.tier2 is not None:
            pools["contacts.tier2"] = self.contacts.tier2.staffing
        for where, plans in pools.items():
            if plans[0].start > self.start_date:
                raise ValueError(
                    f"{where}.staffing starts on {plans[0].start}, after the scenario start {self.start_date}: "
                    "the schedule does not cover the horizon"
                )
            per_day = 1440 // self.interval_min
            for j, plan in enumerate(plans):
                if plan.agents_by_interval is not None and len(plan.agents_by_interval) != per_day:
                    raise ValueError(
                        f"{where}.staffing[{j}].agents_by_interval has {len(plan.agents_by_interval)} values; "
                        f"interval_min {self.interval_min} needs {per_day}"
                    )
        self._check_planner()
        for i, inc in enumerate(self.incidents):
            start = inc.start.date() if isinstance(inc.start, dt.datetime) else inc.start
            if start >= self.end_date:
                raise ValueError(f"incidents[{i}] starts on {start}, after the horizon ends ({self.end_date})")
            if inc.end < inc.start:
                raise ValueError(f"incidents[{i}] ends before it starts")
        return self

    def _check_planner(self) -> None:
        pl = self.planner
        present = set(self.contacts.channels) | ({"tier2"} if self.contacts.tier2 is not None else set())
        for name in [*(pl.pools or []), *pl.targets]:
            if name not in present:
                raise ValueError(f"planner names pool {name!r}, which the scenario does not have")
        for when, what in ((pl.window_start, "window_start"), (pl.window_end, "window_end")):
            if when is not None and not (self.start_date <= when < self.end_date):
                raise ValueError(f"planner.{what} {when} is outside the horizon {self.start_date}..{self.end_date}")
        step = pl.shifts.start_step_min
        if step % self.interval_min:
            raise ValueError(f"planner.shifts.start_step_min {step} is not a multiple of interval_min {self.interval_min}")
        for t in pl.shifts.types:
            for what, minutes in (("length_h", t.length_h * 60), ("break_min", t.break_min)):
                if abs(minutes / self.interval_min - round(minutes / self.interval_min)) > 1e-9:
                    raise ValueError(
                        f"planner.shifts.types[{t.name}].{what} is not a whole number of {self.interval_min}-minute intervals"
                    )
