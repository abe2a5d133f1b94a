"""Decode BSM-WS36A register blocks into typed values."""

from __future__ import annotations

from collections.abc import Sequence

from meter.modbus.sunspec import BlockView, ModelInstance
from meter.snapshot import SnapshotFields


def snapshot_fields(view: BlockView) -> SnapshotFields:
    """The signed fields of a snapshot model (64901) from a block holding Typ .. Evt."""
    return SnapshotFields(
        typ=view.number("Typ"),
        rcr=view.number("RCR"),
        tot_wh_imp=view.number("TotWhImp"),
        wh_sf=view.number("Wh_SF"),
        w=view.number("W"),
        w_sf=view.number("W_SF"),
        ma1=view.string("MA1"),
        rcnt=view.number("RCnt"),
        os=view.number("OS"),
        epoch=view.number("Epoch"),
        tzo=view.number("TZO"),
        epoch_set_cnt=view.number("EpochSetCnt"),
        epoch_set_os=view.number("EpochSetOS"),
        di=view.number("DI"),
        do=view.number("DO"),
        meta1=view.string("Meta1"),
        meta2=view.string("Meta2"),
        meta3=view.string("Meta3"),
        evt=view.number("Evt"),
    )


def fields_from_registers(
    model: ModelInstance, wire_address: int, regs: Sequence[int]
) -> SnapshotFields:
    """Decode a register dump of a snapshot model (starting anywhere up to Typ)."""
    return snapshot_fields(BlockView(model, wire_address, regs))
