"""Splitting journeys into parts that know only their own names, for the additivity tests of
journeymodel.stats: statistics of the parts, summed in any order, equal those of the whole."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from journeymodel.data.journeys import JourneySet


def compact(js: JourneySet) -> JourneySet:
    """The same journeys with only the touchpoints, personas, devices and customers they use
    (codes re-numbered into the smaller sorted vocabularies), as a part read on its own would."""
    tp = np.unique(js.codes)
    persona = np.unique(js.persona[js.persona >= 0])
    cust = np.unique(js.customer[js.customer >= 0])
    changes = dict(
        codes=np.searchsorted(tp, js.codes).astype(js.codes.dtype),
        touchpoints=tuple(js.touchpoints[i] for i in tp),
        persona=np.where(js.persona >= 0, np.searchsorted(persona, js.persona), -1
                         ).astype(js.persona.dtype),
        personas=tuple(js.personas[i] for i in persona),
        customer=np.where(js.customer >= 0, np.searchsorted(cust, js.customer), -1
                          ).astype(js.customer.dtype),
        customers=js.customers[cust] if len(js.customers) else js.customers,
    )
    if js.device is not None:
        dev = np.unique(js.device[js.device >= 0])
        changes.update(device=np.where(js.device >= 0, np.searchsorted(dev, js.device), -1
                                       ).astype(js.device.dtype),
                       devices=tuple(js.devices[i] for i in dev))
    return replace(js, **changes)


def split_parts(js: JourneySet, labels: np.ndarray, by_customer: bool = False
                ) -> list[JourneySet]:
    """Parts of ``js`` by ``labels`` (one label per journey, or per customer with
    ``by_customer``), each compacted to its own vocabularies; empty parts are left out."""
    labels = np.asarray(labels)
    lab = labels[js.customer] if by_customer else labels
    return [compact(js.take(np.flatnonzero(lab == v))) for v in np.unique(lab)]
