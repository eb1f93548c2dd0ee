"""Data-driven clusters: k-means on standardised portrait features, each with a profile a banker can read."""

from __future__ import annotations

import math

import numpy as np
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from sqlalchemy import delete, update
from sqlmodel import Session, select

from services.customer.portrait.models import ClusterProfile, CustomerPortrait, Lifecycle

# (feature, words when the cluster sits well above the average, words when well below)
FEATURES = (
    ("tenure_months", "long-standing", "recently joined"),
    ("products_held", "many products", "few products"),
    ("contacts_90d", "frequent contact", "rarely contacted"),
    ("days_since_last_contact", "long silent", "recently in touch"),
    ("csat_avg", "satisfied", "dissatisfied"),
    ("complaints_12m", "complaining", "no complaints"),
    ("monthly_income", "high income", "low income"),
    ("assets", "wealthy", "few assets"),
)
_NOTABLE_Z = 0.5


def vector(portrait: CustomerPortrait) -> list[float]:
    # Neutral fills for the unknown, and logs for money so a few millionaires do not make one cluster each.
    return [
        float(portrait.tenure_months), float(portrait.products_held), float(portrait.contacts_90d),
        float(365 if portrait.days_since_last_contact is None else portrait.days_since_last_contact),
        float(3.0 if portrait.csat_avg is None else portrait.csat_avg), float(portrait.complaints_12m),
        math.log1p(float(portrait.monthly_income or 0)), math.log1p(float(portrait.assets or 0)),
    ]


def describe(z: list[float]) -> str:
    notable = sorted(((abs(v), i, v) for i, v in enumerate(z) if abs(v) >= _NOTABLE_Z), reverse=True)[:3]
    if not notable:
        return "typical customers"
    return ", ".join(FEATURES[i][1] if v > 0 else FEATURES[i][2] for _, i, v in notable)


def refresh_clusters(session: Session, k: int = 4, seed: int = 0) -> list[ClusterProfile]:
    portraits = session.exec(select(CustomerPortrait).where(CustomerPortrait.lifecycle_stage != Lifecycle.LOST.value)
                             ).all()
    session.execute(delete(ClusterProfile))
    session.execute(update(CustomerPortrait).values(cluster=None))
    k = min(k, len(portraits))
    if k == 0:
        return []
    data = np.array([vector(p) for p in portraits])
    scaler = StandardScaler().fit(data)
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(scaler.transform(data))
    profiles = []
    for number, centre in enumerate(model.cluster_centers_):
        raw = scaler.inverse_transform(centre.reshape(1, -1))[0]
        profiles.append(ClusterProfile(
            cluster=number, label=describe(list(centre)), size=int((model.labels_ == number).sum()),
            centre={"z": [round(float(v), 4) for v in centre], "raw": dict(zip([f[0] for f in FEATURES],
                                                                               [round(float(v), 2) for v in raw])),
                    "mean": [float(v) for v in scaler.mean_], "scale": [float(v) for v in scaler.scale_]}))
    session.add_all(profiles)
    for portrait, label in zip(portraits, model.labels_, strict=True):
        portrait.cluster = int(label)
        session.add(portrait)
    session.flush()
    return profiles


def nearest(session: Session, portrait: CustomerPortrait) -> int | None:
    """Place one freshly computed portrait in the last refreshed clustering, without refitting."""
    profiles = session.exec(select(ClusterProfile)).all()
    if not profiles:
        return None
    mean, scale = np.array(profiles[0].centre["mean"]), np.array(profiles[0].centre["scale"])
    point = (np.array(vector(portrait)) - mean) / np.where(scale == 0, 1, scale)
    return min(profiles, key=lambda p: float(np.sum((np.array(p.centre["z"]) - point) ** 2))).cluster
