"""The commissioning label: the meter's serial and public key, as text and as a QR code.

Calibration law wants the key that verifies a session's signed values to be visible to the
driver at the charge point. The label goes on the station's enclosure beside the meter: A7
landscape (105 x 74 mm), as SVG for printing and as a 300 dpi PNG.

The key is the meter's DER SubjectPublicKeyInfo in upper-case hex, the form the transparency
software and `chargepoint verify --public-key` take. The QR code holds exactly that text
(upper-case hex fits the QR alphanumeric mode, which keeps the code small); the text below it is
the same characters in groups of four. QR encoding is done by segno.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from xml.sax.saxutils import escape

import segno
from PIL import Image, ImageDraw, ImageFont

from meter.proof.keys import PublicKeyInfo

WIDTH_MM = 105.0
HEIGHT_MM = 74.0
MARGIN_MM = 5.0
QR_MM = 38.0
KEY_GROUP = 4
KEY_LINE = 64  # hex digits per line
PNG_DPI = 300
TEXT_TOP_MM = 7.0  # first caption beside the QR code, below the top margin
TEXT_STEP_MM = 6.6  # caption + value
FONT_SANS = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"
FONT_MONO = "DejaVu Sans Mono, Liberation Mono, Courier New, monospace"
MM_PER_INCH = 25.4
_MEASURE_PX = 100  # font size at which SVG text is measured

TITLE = "Öffentlicher Schlüssel des Zählers / Meter public key"
KEY_CAPTION = "Öffentlicher Schlüssel / Public key (DER, hex)"
FOOTER = (
    "Signierte Messwerte mit diesem Schlüssel prüfen / Verify your signed readings with this key"
)


class LabelError(ValueError):
    """The label cannot be made from what was given."""


@dataclass(frozen=True)
class LabelData:
    """What the label shows."""

    key: PublicKeyInfo
    serial: str
    meter_id: str = ""  # MA1, the server id in every OCMF record (MS)
    model: str = ""  # manufacturer and model
    evse_id: str = ""
    # where the operator publishes the verifier page: the QR code then opens it, key filled in
    verifier_url: str = ""

    def __post_init__(self) -> None:
        if not self.serial.strip():
            raise LabelError("the label needs the meter's serial number")


def key_text(key: PublicKeyInfo) -> str:
    """The key as printed and encoded: DER in upper-case hex."""
    return key.der_hex.upper()


def key_lines(key: PublicKeyInfo) -> list[str]:
    """The key text in lines of 64 digits, in groups of four."""
    text = key_text(key)
    lines = []
    for start in range(0, len(text), KEY_LINE):
        chunk = text[start : start + KEY_LINE]
        lines.append(" ".join(chunk[i : i + KEY_GROUP] for i in range(0, len(chunk), KEY_GROUP)))
    return lines


def qr_text(key: PublicKeyInfo, verifier_url: str = "") -> str:
    """What the QR code holds: the key text, or the verifier page's URL with the key in its
    fragment (`URL#key=<key text>`; the fragment never leaves the driver's phone)."""
    return f"{verifier_url}#key={key_text(key)}" if verifier_url else key_text(key)


def qr_code(key: PublicKeyInfo, verifier_url: str = "") -> segno.QRCode:
    """The QR code of `qr_text` (error correction M: 15 % of it may be scratched off)."""
    return segno.make_qr(qr_text(key, verifier_url), error="m", boost_error=False)


def _modules(qr: segno.QRCode) -> list[list[bool]]:
    """Dark modules, row by row, with the 4-module quiet zone the standard asks for."""
    return [[bool(v) for v in row] for row in qr.matrix_iter(scale=1, border=4)]


def _text_lines(data: LabelData) -> list[tuple[str, str]]:
    """(caption, value) lines beside the QR code."""
    lines = []
    if data.model:
        lines.append(("Zähler / Meter", data.model))
    lines.append(("Seriennummer / Serial number", data.serial))
    if data.meter_id:
        lines.append(("Zähler-ID in OCMF (MS) / Meter ID", data.meter_id))
    if data.evse_id:
        lines.append(("Ladepunkt / EVSE ID", data.evse_id))
    lines.append(("Kurve / Curve", data.key.curve_name))
    return lines


# ---- SVG ------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _qr_path(modules: list[list[bool]]) -> str:
    """One path of unit squares (runs of dark modules per row)."""
    parts = []
    for y, row in enumerate(modules):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            run = x
            while run < len(row) and row[run]:
                run += 1
            parts.append(f"M{x} {y}h{run - x}v1h-{run - x}z")
            x = run
    return "".join(parts)


def _fit_size(
    text: str, size: float, max_width: float, *, mono: bool = False, bold: bool = False
) -> float:
    """`size`, or less so that `text` fits `max_width` (measured with the font the PNG uses,
    DejaVu where there is one, with some room for the printer's font)."""
    width = _font(mono, _MEASURE_PX, bold).getlength(text) / _MEASURE_PX * size * 1.05
    return size * max_width / width if width > max_width else size


def _svg_text(
    x: float,
    y: float,
    text: str,
    size: float,
    max_width: float,
    *,
    mono: bool = False,
    bold: bool = False,
    extra: str = "",
) -> str:
    """A <text> element, its font size lowered until it fits `max_width`."""
    size = _fit_size(text, size, max_width, mono=mono, bold=bold)
    family = FONT_MONO if mono else FONT_SANS
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{_fmt(x)}" y="{_fmt(y)}" font-family="{family}" font-size="{_fmt(size)}"'
        f"{weight}{extra}>{escape(text)}</text>"
    )


def render_svg(data: LabelData) -> str:
    """The label as an SVG document sized in millimetres."""
    modules = _modules(qr_code(data.key, data.verifier_url))
    scale = QR_MM / len(modules)
    inner = WIDTH_MM - 2 * MARGIN_MM
    grey = ' fill="#444"'
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(WIDTH_MM)}mm" '
        f'height="{_fmt(HEIGHT_MM)}mm" viewBox="0 0 {_fmt(WIDTH_MM)} {_fmt(HEIGHT_MM)}">',
        f"<title>{escape(TITLE)}: {escape(data.serial)}</title>",
        f'<rect x="0" y="0" width="{_fmt(WIDTH_MM)}" height="{_fmt(HEIGHT_MM)}" fill="#fff" '
        'stroke="#000" stroke-width="0.3"/>',
        _svg_text(MARGIN_MM, MARGIN_MM + 3, TITLE, 3.4, inner, bold=True),
        f'<g id="qr" transform="translate({_fmt(MARGIN_MM - 4 * scale)} {_fmt(MARGIN_MM + 5)}) '
        f'scale({_fmt(scale)})"><path fill="#000" shape-rendering="crispEdges" '
        f'd="{_qr_path(modules)}"/></g>',
    ]
    x = MARGIN_MM + QR_MM - 4 * scale + 2
    column = WIDTH_MM - MARGIN_MM - x
    y = MARGIN_MM + TEXT_TOP_MM
    for caption, value in _text_lines(data):
        out.append(_svg_text(x, y, caption, 2.3, column, extra=grey))
        out.append(_svg_text(x, y + 3.6, value, 3.2, column, bold=True, extra=' class="value"'))
        y += TEXT_STEP_MM
    key_y = MARGIN_MM + 5 + QR_MM + 2.5
    out.append(_svg_text(MARGIN_MM, key_y, KEY_CAPTION, 2.3, inner, extra=grey))
    lines = key_lines(data.key)
    key_size = _fit_size(max(lines, key=len), 2.45, inner, mono=True)
    for n, line in enumerate(lines):
        y = key_y + 4 + 3.4 * n
        out.append(_svg_text(MARGIN_MM, y, line, key_size, inner, mono=True, extra=' class="key"'))
    out.append(_svg_text(MARGIN_MM, HEIGHT_MM - 3, FOOTER, 2.0, inner, extra=grey))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---- PNG ------------------------------------------------------------------------------------


def _px(mm: float, dpi: int) -> int:
    return round(mm / MM_PER_INCH * dpi)


@functools.lru_cache(maxsize=64)
def _font(mono: bool, size_px: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu when the system has it, else Pillow's own font."""
    name = "DejaVuSansMono" if mono else "DejaVuSans"
    try:
        return ImageFont.truetype(f"{name}{'-Bold' if bold else ''}.ttf", size_px)
    except OSError:
        font = ImageFont.load_default(size_px)
        assert isinstance(font, ImageFont.FreeTypeFont)
        return font


def _fitted(
    text: str, mono: bool, size_px: int, width_px: int, bold: bool = False
) -> ImageFont.FreeTypeFont:
    """The font at `size_px`, or smaller until `text` fits in `width_px`."""
    font = _font(mono, size_px, bold)
    while size_px > 6 and font.getlength(text) > width_px:
        size_px -= 1
        font = _font(mono, size_px, bold)
    return font


def render_png(data: LabelData, dpi: int = PNG_DPI) -> bytes:
    """The label as a PNG at `dpi` dots per inch, laid out like the SVG."""
    width, height = _px(WIDTH_MM, dpi), _px(HEIGHT_MM, dpi)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width - 1, height - 1), outline=0, width=max(1, _px(0.3, dpi)))
    margin = _px(MARGIN_MM, dpi)
    inner = width - 2 * margin
    draw.text(
        (margin, _px(MARGIN_MM + 3, dpi)),
        TITLE,
        font=_fitted(TITLE, False, _px(3.4, dpi), inner, bold=True),
        fill=0,
        anchor="ls",
    )
    modules = _modules(qr_code(data.key, data.verifier_url))
    module_px = max(1, _px(QR_MM, dpi) // len(modules))
    qr_x = margin - 4 * module_px
    qr_y = _px(MARGIN_MM + 5, dpi)
    for y, row in enumerate(modules):
        for x, dark in enumerate(row):
            if dark:
                left, top = qr_x + x * module_px, qr_y + y * module_px
                draw.rectangle((left, top, left + module_px - 1, top + module_px - 1), fill=0)
    text_x = qr_x + len(modules) * module_px + _px(2, dpi)
    text_w = width - margin - text_x
    y_mm = MARGIN_MM + TEXT_TOP_MM
    for caption, value in _text_lines(data):
        draw.text(
            (text_x, _px(y_mm, dpi)),
            caption,
            font=_fitted(caption, False, _px(2.3, dpi), text_w),
            fill=68,
            anchor="ls",
        )
        draw.text(
            (text_x, _px(y_mm + 3.6, dpi)),
            value,
            font=_fitted(value, False, _px(3.2, dpi), text_w, bold=True),
            fill=0,
            anchor="ls",
        )
        y_mm += TEXT_STEP_MM
    key_y = MARGIN_MM + 5 + QR_MM + 2.5
    draw.text(
        (margin, _px(key_y, dpi)),
        KEY_CAPTION,
        font=_fitted(KEY_CAPTION, False, _px(2.3, dpi), inner),
        fill=68,
        anchor="ls",
    )
    lines = key_lines(data.key)
    mono = _fitted(max(lines, key=len), True, _px(2.45, dpi), inner)
    for n, line in enumerate(lines):
        draw.text((margin, _px(key_y + 4 + 3.4 * n, dpi)), line, font=mono, fill=0, anchor="ls")
    draw.text(
        (margin, _px(HEIGHT_MM - 3, dpi)),
        FOOTER,
        font=_fitted(FOOTER, False, _px(2.0, dpi), inner),
        fill=68,
        anchor="ls",
    )
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()
