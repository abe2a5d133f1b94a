/* The driver's verifier: checks signed meter readings in the browser, offline.
 *
 * Input: OCMF records (one per line), a S.A.F.E. XML file, Chargy's JSON (BSM-WS36A snapshots)
 * or an OCPP signedMeterValue. Key: the one printed on the station's label (raw x||y hex, 04||x||y,
 * DER/SPKI hex, PEM). Every signature is checked with the key the user typed, never with a key
 * that travels with the data (that one is only compared with it).
 *
 * OCMF: ECDSA over the exact payload bytes between the first and second "|" (hash as the
 * record's SA names it); the DER signature is converted to r||s for WebCrypto and is not
 * low-S normalised. BSM snapshot (Chargy): ECDSA P-256 over SHA-256 of the 17-field abstract
 * byte string (a port of meter/bsm/signature.py). Billable: OCMF ST "G" and no EF flag; a
 * snapshot with Evt 0.
 */
"use strict";

(function () {
  const CLI = "chargepoint verify FILE --public-key KEY";
  const CURVES = {
    "1.2.840.10045.3.1.7": { name: "P-256", size: 32, label: "NIST P-256 (secp256r1)" },
    "1.3.132.0.34": { name: "P-384", size: 48, label: "NIST P-384 (secp384r1)" },
    "1.3.132.0.35": { name: "P-521", size: 66, label: "NIST P-521 (secp521r1)" },
  };
  const FOREIGN_CURVES = {
    "1.3.132.0.10": "secp256k1",
    "1.2.840.10045.3.1.1": "secp192r1",
    "1.3.36.3.3.2.8.1.1.7": "brainpoolP256r1",
    "1.3.36.3.3.2.8.1.1.11": "brainpoolP384r1",
    "1.3.36.3.3.2.8.1.1.13": "brainpoolP512r1",
  };
  const SPKI_PREFIX = {
    "P-256": "3059301306072a8648ce3d020106082a8648ce3d030107034200",
    "P-384": "3076301006072a8648ce3d020106052b81040022036200",
    "P-521": "30819b301006072a8648ce3d020106052b8104002303818600",
  };
  const SA_CURVES = {
    secp256r1: "P-256",
    secp384r1: "P-384",
    secp521r1: "P-521",
  };
  const SA_FOREIGN = ["secp192r1", "secp256k1", "brainpoolp256r1", "brainpool256r1",
    "brainpoolp384r1", "brainpool384r1", "brainpoolp512r1", "brainpool512r1"];
  const SA_HASHES = { SHA256: "SHA-256", SHA384: "SHA-384", SHA512: "SHA-512" };
  const SESSION_FIELDS = ["FV", "GI", "GS", "GV", "MV", "MM", "MS", "MF", "IS", "IL", "IF", "IT", "ID"];
  const TIME_FLAGS = { S: "synchronised", U: "unsynchronised", I: "informative", R: "relative" };
  const TX_NAMES = { B: "Begin", C: "current", E: "End", X: "exception", L: "limit", R: "rate change",
    A: "after tariff change", P: "power line", S: "suspended", T: "tariff" };

  class CheckError extends Error {}

  // ---- bytes -----------------------------------------------------------------------------

  function hexToBytes(hex) {
    if (hex.length % 2 || /[^0-9a-fA-F]/.test(hex)) throw new CheckError("not hex");
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }

  function bytesToHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function base64ToBytes(text) {
    let clean = text.replace(/\s+/g, "").replace(/-/g, "+").replace(/_/g, "/");
    while (clean.length % 4) clean += "=";
    let raw;
    try {
      raw = atob(clean);
    } catch (e) {
      throw new CheckError("not base64");
    }
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function latin1(text) {
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 255) throw new CheckError("a text field holds a character outside ISO-8859-1");
      out[i] = code;
    }
    return out;
  }

  function concat(parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  async function sha256Hex(bytes) {
    return bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  }

  // ---- DER -------------------------------------------------------------------------------

  function derItem(bytes, pos) {
    if (pos + 2 > bytes.length) throw new CheckError("DER ends early");
    const tag = bytes[pos];
    let len = bytes[pos + 1];
    let start = pos + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 3 || start + n > bytes.length) throw new CheckError("DER length unreadable");
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + bytes[start + i];
      start += n;
    }
    const end = start + len;
    if (end > bytes.length) throw new CheckError("DER ends early");
    return { tag, start, end };
  }

  function oidText(bytes) {
    const parts = [Math.floor(bytes[0] / 40), bytes[0] % 40];
    let value = 0;
    for (let i = 1; i < bytes.length; i++) {
      value = value * 128 + (bytes[i] & 0x7f);
      if (!(bytes[i] & 0x80)) {
        parts.push(value);
        value = 0;
      }
    }
    return parts.join(".");
  }

  function parseSpki(der) {
    const outer = derItem(der, 0);
    if (outer.tag !== 0x30 || outer.end !== der.length) throw new CheckError("not a DER public key");
    const alg = derItem(der, outer.start);
    if (alg.tag !== 0x30) throw new CheckError("not a DER public key");
    const algOid = derItem(der, alg.start);
    if (algOid.tag !== 0x06 || oidText(der.subarray(algOid.start, algOid.end)) !== "1.2.840.10045.2.1") {
      throw new CheckError("not an elliptic-curve public key");
    }
    const curveOid = derItem(der, algOid.end);
    if (curveOid.tag !== 0x06) throw new CheckError("the key names no curve");
    const bits = derItem(der, alg.end);
    if (bits.tag !== 0x03 || der[bits.start] !== 0) throw new CheckError("the key holds no point");
    return { oid: oidText(der.subarray(curveOid.start, curveOid.end)), point: der.slice(bits.start + 1, bits.end) };
  }

  function derSignatureToRaw(der, size) {
    const seq = derItem(der, 0);
    if (seq.tag !== 0x30 || seq.end !== der.length) throw new CheckError(`malformed DER signature (${der.length} bytes)`);
    const r = derItem(der, seq.start);
    const s = derItem(der, r.end);
    if (r.tag !== 0x02 || s.tag !== 0x02 || s.end !== seq.end) {
      throw new CheckError(`malformed DER signature (${der.length} bytes)`);
    }
    const out = new Uint8Array(2 * size);
    [r, s].forEach((item, index) => {
      let value = der.subarray(item.start, item.end);
      while (value.length > size && value[0] === 0) value = value.subarray(1);
      if (value.length > size) throw new CheckError("signature value too long for the curve");
      out.set(value, (index + 1) * size - value.length);
    });
    return out;
  }

  // ---- keys ------------------------------------------------------------------------------

  /* A key as typed or as found in a file: {curve, point, spki} or {foreign: curve name}. */
  function parseKey(text) {
    let t = String(text).trim();
    if (!t) throw new CheckError("no key given");
    let der = null;
    if (t.startsWith("-----BEGIN")) {
      const body = t.replace(/-----[^-]+-----/g, "");
      der = base64ToBytes(body);
    } else {
      t = t.replace(/^oca:base16:asn1:/i, "").replace(/[\s:]+/g, "");
      if (!/^[0-9a-fA-F]+$/.test(t) || t.length % 2) {
        throw new CheckError("give the key as printed on the label: hex (128 characters x||y, or DER 3059…) or PEM");
      }
      const bytes = hexToBytes(t);
      const bare = { 64: "P-256", 96: "P-384", 132: "P-521" }[bytes.length];
      if (bare) return keyOf(bare, concat([Uint8Array.of(4), bytes]));
      const prefixed = { 65: "P-256", 97: "P-384", 133: "P-521" }[bytes.length];
      if (prefixed && bytes[0] === 4) return keyOf(prefixed, bytes);
      if (bytes[0] === 2 || bytes[0] === 3) {
        throw new CheckError("a compressed point: give the full key (x||y or DER) as on the label");
      }
      if (bytes[0] !== 0x30) throw new CheckError(`${bytes.length} key bytes are neither x||y nor a DER key`);
      der = bytes;
    }
    const spki = parseSpki(der);
    if (FOREIGN_CURVES[spki.oid]) return { foreign: FOREIGN_CURVES[spki.oid] };
    const curve = CURVES[spki.oid];
    if (!curve) throw new CheckError(`the key is on a curve this page does not know (${spki.oid})`);
    if (spki.point.length !== 2 * curve.size + 1 || spki.point[0] !== 4) {
      throw new CheckError("the key's point is not in the uncompressed form");
    }
    return keyOf(curve.name, spki.point);
  }

  function keyOf(curve, point) {
    return { curve, point, spki: concat([hexToBytes(SPKI_PREFIX[curve]), point]) };
  }

  function sameKey(a, b) {
    return Boolean(a && b && a.curve === b.curve && bytesToHex(a.point) === bytesToHex(b.point));
  }

  async function describeKey(key) {
    return `${key.curve}, sha256:${(await sha256Hex(key.spki)).slice(0, 16)}…`;
  }

  const imported = new Map();
  async function cryptoKey(key) {
    const id = key.curve + bytesToHex(key.point);
    if (!imported.has(id)) {
      imported.set(id, crypto.subtle.importKey("raw", key.point, { name: "ECDSA", namedCurve: key.curve }, false, ["verify"]));
    }
    return imported.get(id);
  }

  async function ecdsaVerify(key, hash, derSignature, data) {
    const size = { "P-256": 32, "P-384": 48, "P-521": 66 }[key.curve];
    const raw = derSignatureToRaw(derSignature, size);
    return crypto.subtle.verify({ name: "ECDSA", hash }, await cryptoKey(key), raw, data);
  }

  // ---- OCMF ------------------------------------------------------------------------------

  function jsonEnd(text, start) {
    let depth = 0;
    let inString = false;
    for (let i = start; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === "\\") i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    throw new CheckError("the payload's JSON never ends");
  }

  const TM = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:[,.](\d{1,6}))?([+-])(\d{2}):?(\d{2}) ([A-Z])$/;

  function parseReading(rd, index) {
    if (!rd || typeof rd !== "object") throw new CheckError(`reading ${index} is not an object`);
    const m = TM.exec(String(rd.TM || ""));
    if (!m) throw new CheckError(`reading ${index}: TM ${JSON.stringify(rd.TM)} is not a time`);
    if (!(m[7] in TIME_FLAGS)) throw new CheckError(`reading ${index}: unknown time flag ${m[7]}`);
    const rv = numberText(rd.RV);
    const value = Number(rv);
    if (rv === "" || !isFinite(value)) throw new CheckError(`reading ${index}: RV is not a number`);
    const problems = [];
    if (rd.ST === undefined) problems.push("no meter status ST");
    else if (rd.ST !== "G") problems.push(`meter status ST "${rd.ST}" is not "G" (good)`);
    if (rd.EF) problems.push(`error flags EF "${rd.EF}" set`);
    return {
      time: `${m[1]} ${m[2]} ${m[4]}${m[5]}:${m[6]}`,
      instant: Date.parse(`${m[1]}T${m[2]}.${(m[3] || "0").padEnd(3, "0").slice(0, 3)}${m[4]}${m[5]}:${m[6]}`),
      timeFlag: m[7],
      tx: rd.TX,
      value,
      valueText: `${rv} ${rd.RU || ""}`.trim(),
      unit: rd.RU,
      obis: rd.RI,
      total: rd.XV === undefined ? "" : `${numberText(rd.XV)} ${rd.XU || ""}`.trim(),
      problems,
    };
  }

  /* A reading's number as the meter wrote it ("0.00", not 0), where the browser tells. */
  class Written {
    constructor(value, text) {
      this.value = value;
      this.text = text;
    }
  }

  function numberText(value) {
    if (value instanceof Written) return value.text;
    if (typeof value === "number") return String(value);
    if (typeof value === "string" && value.trim() && isFinite(Number(value))) return value.trim();
    return "";
  }

  function keepWritten(key, value, context) {
    if ((key === "RV" || key === "XV") && typeof value === "number" && context && typeof context.source === "string") {
      return new Written(value, context.source);
    }
    return value;
  }

  function parseOcmf(text) {
    const t = text.trim();
    if (!t.startsWith("OCMF|")) throw new CheckError("a record starts with OCMF|");
    if (t[5] !== "{") throw new CheckError("the payload does not start with {");
    const end = jsonEnd(t, 5);
    if (t[end] !== "|") throw new CheckError("no | after the payload");
    const payloadText = t.slice(5, end);
    let payload, signature;
    try {
      payload = JSON.parse(payloadText, keepWritten);
    } catch (e) {
      throw new CheckError(`the payload is not JSON: ${e.message}`);
    }
    try {
      signature = JSON.parse(t.slice(end + 1));
    } catch (e) {
      throw new CheckError("the signature section is not JSON");
    }
    if (!signature || typeof signature.SD !== "string" || !signature.SD) {
      throw new CheckError("the signature section has no SD");
    }
    if (!Array.isArray(payload.RD) || !payload.RD.length) throw new CheckError("the payload has no readings (RD)");
    return {
      payload,
      signature,
      payloadBytes: new TextEncoder().encode(payloadText),
      readings: payload.RD.map((rd, i) => parseReading(rd, i + 1)),
      meter: payload.MS || payload.GS || "",
    };
  }

  function ocmfAlgorithm(signature) {
    const sa = String(signature.SA || "ECDSA-secp256r1-SHA256");
    const parts = sa.split("-");
    if (parts.length !== 3 || parts[0].toUpperCase() !== "ECDSA") return { unknown: sa };
    const curve = SA_CURVES[parts[1].toLowerCase()];
    const hash = SA_HASHES[parts[2].toUpperCase()];
    if (SA_FOREIGN.includes(parts[1].toLowerCase()) && hash) return { foreign: parts[1], sa };
    if (!curve || !hash) return { unknown: sa };
    return { curve, hash, sa };
  }

  function signatureBytes(signature) {
    const se = String(signature.SE || "hex").toLowerCase();
    if (se === "hex") return hexToBytes(signature.SD);
    if (se === "base64") return base64ToBytes(signature.SD);
    throw new CheckError(`unsupported signature encoding SE ${signature.SE}`);
  }

  /* {state: "valid" | "invalid" | "unsupported", reason} */
  async function checkOcmfSignature(record, key) {
    const alg = ocmfAlgorithm(record.signature);
    if (alg.foreign) {
      return { state: "unsupported", reason: `${alg.sa}: browsers cannot check ${alg.foreign}; use ${CLI}` };
    }
    if (alg.unknown) return { state: "invalid", reason: `unknown signature algorithm ${alg.unknown}` };
    if (key.foreign) {
      return { state: "unsupported", reason: `the key is on ${key.foreign}, which browsers cannot check; use ${CLI}` };
    }
    if (key.curve !== alg.curve) {
      return { state: "invalid", reason: `the key is on ${key.curve} but the record (${alg.sa}) needs ${alg.curve}` };
    }
    if (record.signature.SM && String(record.signature.SM).toLowerCase() !== "application/x-der") {
      return { state: "invalid", reason: `unsupported signature type SM ${record.signature.SM}` };
    }
    try {
      const ok = await ecdsaVerify(key, alg.hash, signatureBytes(record.signature), record.payloadBytes);
      return ok ? { state: "valid", reason: alg.sa } : { state: "invalid", reason: "the signature does not match the data and this key" };
    } catch (e) {
      if (e instanceof CheckError) return { state: "invalid", reason: e.message };
      throw e;
    }
  }

  // ---- BSM-WS36A snapshots (Chargy JSON) -------------------------------------------------

  // name, kind, DLMS unit, scale source, signed (int16 sign-extended)
  const LAYOUT = [
    ["Typ", "num", 255, null, false],
    ["RCR", "num", 30, "wh", false],
    ["TotWhImp", "num", 30, "wh", false],
    ["W", "num", 27, "w", true],
    ["MA1", "str"],
    ["RCnt", "num", 255, null, false],
    ["OS", "num", 7, null, false],
    ["Epoch", "num", 7, null, false],
    ["TZO", "num", 6, null, true],
    ["EpochSetCnt", "num", 255, null, false],
    ["EpochSetOS", "num", 7, null, false],
    ["DI", "num", 255, null, false],
    ["DO", "num", 255, null, false],
    ["Meta1", "str"],
    ["Meta2", "str"],
    ["Meta3", "str"],
    ["Evt", "num", 255, null, false],
  ];
  const LAYOUT_NAMES = new Set(LAYOUT.map((f) => f[0]));

  function integer(value, what) {
    if (typeof value === "number" && isFinite(value)) return Math.trunc(value);
    if (typeof value === "string" && /^\s*[+-]?\d+\s*$/.test(value)) return parseInt(value, 10);
    throw new CheckError(`${what} is not an integer`);
  }

  /* The raw fields of a snapshot object, as meter/bsm/chargy.py fields_of rebuilds them. */
  function snapshotFields(obj) {
    const id = obj["@id"] || "?";
    const raw = { wh_sf: 0, w_sf: 0 };
    if (!Array.isArray(obj.additionalValues)) throw new CheckError(`snapshot ${id}: no additionalValues`);
    for (const item of obj.additionalValues) {
      const name = item && item.measurand && item.measurand.name;
      if (!LAYOUT_NAMES.has(name)) throw new CheckError(`snapshot ${id}: unknown field ${JSON.stringify(name)}`);
      const measured = item.measuredValue || {};
      if (["MA1", "Meta1", "Meta2", "Meta3"].includes(name)) {
        raw[name] = latin1(String(measured.value));
        continue;
      }
      let value = integer(measured.value, `snapshot ${id}: ${name}`);
      if ((name === "W" || name === "TZO") && value < 0) value += 0x10000;
      raw[name] = value;
      if (name === "TotWhImp" || name === "RCR") raw.wh_sf = integer(measured.scale || 0, `${name} scale`);
      if (name === "W") raw.w_sf = integer(measured.scale || 0, "W scale");
    }
    for (const [name] of LAYOUT) {
      if (!(name in raw)) throw new CheckError(`snapshot ${id}: no ${name}`);
    }
    if (typeof obj.signature !== "string") throw new CheckError(`snapshot ${id}: no signature`);
    return { raw, signature: hexToBytes(obj.signature.trim()) };
  }

  /* The byte string the meter hashes (meter/bsm/signature.py abstract_representation). */
  function abstractRepresentation(raw) {
    const parts = [];
    for (const [name, kind, unit, scaleFrom, signed] of LAYOUT) {
      if (kind === "str") {
        let data = raw[name];
        let n = data.length;
        while (n > 0 && data[n - 1] === 0) n--;
        data = data.subarray(0, n);
        const head = new Uint8Array(4);
        new DataView(head.buffer).setUint32(0, data.length);
        parts.push(head, data);
        continue;
      }
      const scale = scaleFrom === "wh" ? raw.wh_sf : scaleFrom === "w" ? raw.w_sf : 0;
      if (scale < -128 || scale > 127) throw new CheckError(`scale factor ${scale} of ${name} does not fit int8`);
      const out = new Uint8Array(6);
      const view = new DataView(out.buffer);
      let value = raw[name];
      if (signed) {
        if (value >= 0x8000 && value <= 0xffff) value -= 0x10000;
        else if (value < -0x8000 || value > 0x7fff) throw new CheckError(`${name} = ${value} does not fit an int16 register`);
        view.setInt32(0, value);
      } else {
        if (value < 0 || value > 0xffffffff) throw new CheckError(`${name} = ${value} does not fit a uint32`);
        view.setUint32(0, value);
      }
      view.setInt8(4, scale);
      view.setUint8(5, unit);
      parts.push(out);
    }
    return concat(parts);
  }

  function scaled(value, exponent) {
    return value * Math.pow(10, exponent);
  }

  function snapshotTime(raw) {
    if (raw.Epoch === 0xffffffff) return "clock not set";
    const tzo = raw.TZO >= 0x8000 ? raw.TZO - 0x10000 : raw.TZO;
    const local = new Date((raw.Epoch + tzo * 60) * 1000).toISOString().replace("T", " ").slice(0, 19);
    const sign = tzo < 0 ? "-" : "+";
    const abs = Math.abs(tzo);
    return `${local} ${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  }

  async function checkSnapshot(obj, key) {
    const { raw, signature } = snapshotFields(obj);
    const data = abstractRepresentation(raw);
    const digest = await sha256Hex(data);
    let state;
    let reason;
    if (key.foreign) {
      state = "unsupported";
      reason = `the key is on ${key.foreign}; the meter signs with P-256`;
    } else if (key.curve !== "P-256") {
      state = "invalid";
      reason = `the key is on ${key.curve}; the meter signs snapshots with P-256`;
    } else {
      try {
        state = (await ecdsaVerify(key, "SHA-256", signature, data)) ? "valid" : "invalid";
        reason = state === "valid" ? `snapshot sha256 ${digest.slice(0, 16)}…` : "the signature does not match the snapshot and this key";
      } catch (e) {
        if (!(e instanceof CheckError)) throw e;
        state = "invalid";
        reason = e.message;
      }
    }
    return { raw, digest, state, reason };
  }

  // ---- reading the input -------------------------------------------------------------------

  function lines(text) {
    return text.split("\n").map((l) => l.replace(/^[ \t\r]+|[ \t\r]+$/g, "")).filter((l) => l);
  }

  /* {kind, items}: items are {label, group, ocmf, fileKey} for OCMF, or {snapshot} for Chargy. */
  function readInput(text) {
    const t = text.replace(/^\uFEFF/, "").trim();
    if (!t) throw new CheckError("paste or drop the signed data from your bill");
    if (t.startsWith("OCMF|")) {
      const records = lines(t);
      return { kind: "OCMF", items: records.map((r, i) => ({ label: `record ${i + 1}`, group: "records", ocmf: r, fileKey: null })) };
    }
    if (t.startsWith("<")) return readXml(t);
    if (t.startsWith("{")) {
      let data;
      try {
        data = JSON.parse(t);
      } catch (e) {
        throw new CheckError(`not valid JSON: ${e.message}`);
      }
      if (Array.isArray(data.signedMeterValues)) return { kind: "Chargy JSON", doc: data };
      const smd = data.signedMeterData || data.signedMeterValue;
      if (typeof smd === "string") {
        const ocmf = new TextDecoder().decode(base64ToBytes(smd));
        let fileKey = null;
        if (data.publicKey) fileKey = new TextDecoder().decode(base64ToBytes(data.publicKey));
        return { kind: "OCPP signed value", items: [{ label: "record 1", group: "records", ocmf, fileKey }] };
      }
      throw new CheckError("JSON, but neither Chargy's format nor an OCPP signed value");
    }
    throw new CheckError("not OCMF, S.A.F.E. XML or Chargy JSON (a CSV export: use the command line)");
  }

  function readXml(text) {
    const doc = new DOMParser().parseFromString(text, "application/xml");
    if (doc.getElementsByTagName("parsererror").length) throw new CheckError("not well-formed XML");
    if (doc.documentElement.localName !== "values") throw new CheckError("not S.A.F.E. XML (the root is not <values>)");
    const items = [];
    for (const value of Array.from(doc.getElementsByTagNameNS("*", "value"))) {
      const tid = value.getAttribute("transactionId") || "";
      const context = value.getAttribute("context") || "";
      const signed = value.getElementsByTagNameNS("*", "signedData")[0];
      const keyEl = value.getElementsByTagNameNS("*", "publicKey")[0];
      if (!signed) throw new CheckError(`transaction ${tid}: no signedData`);
      const format = signed.getAttribute("format") || "OCMF";
      if (format !== "OCMF") throw new CheckError(`transaction ${tid}: signedData format ${format} is not OCMF`);
      items.push({
        label: context.replace("Transaction.", "") || "value",
        group: tid ? `transaction ${tid}` : "records",
        ocmf: signed.textContent.trim(),
        fileKey: keyEl ? keyEl.textContent.trim() : null,
      });
    }
    if (!items.length) throw new CheckError("the XML holds no <value>");
    return { kind: "S.A.F.E. XML", items };
  }

  // ---- checking ------------------------------------------------------------------------------

  function keyMatch(fileKeyText, typed) {
    if (!fileKeyText) return { text: "the data names no key", good: null };
    let fileKey;
    try {
      fileKey = parseKey(fileKeyText);
    } catch (e) {
      return { text: `the data names an unreadable key (${e.message})`, good: false };
    }
    if (!typed) return { text: "the data names a key; no key entered to compare", good: null, key: fileKey };
    if (fileKey.foreign || typed.foreign) return { text: "keys on a curve this page cannot compare", good: null, key: fileKey };
    return sameKey(fileKey, typed)
      ? { text: "the key in the data is the key you entered", good: true, key: fileKey }
      : { text: "the data names ANOTHER key than the one you entered", good: false, key: fileKey };
  }

  async function checkOcmfItems(items, typed) {
    const results = [];
    for (const item of items) {
      const match = keyMatch(item.fileKey, typed);
      const key = typed || match.key;
      const result = { label: item.label, group: item.group, match, usedFileKey: !typed };
      try {
        result.record = parseOcmf(item.ocmf);
      } catch (e) {
        if (!(e instanceof CheckError)) throw e;
        result.error = `malformed record: ${e.message}`;
        results.push(result);
        continue;
      }
      if (!key) {
        result.signature = { state: "unchecked", reason: "enter the public key from the station's label" };
      } else {
        result.signature = await checkOcmfSignature(result.record, key);
      }
      results.push(result);
    }
    return results;
  }

  function pagination(record) {
    const m = /^([A-Z])(\d+)$/.exec(String(record.payload.PG || ""));
    return m ? [m[1], parseInt(m[2], 10)] : null;
  }

  function toWh(value, unit) {
    if (unit === "kWh") return value * 1000;
    if (unit === "Wh") return value;
    return null;
  }

  /* A group's session: its Begin, any records between and its End, in pagination order,
     belong together (same meter and identification, consecutive pagination, Begin first, End
     last); problems, and the energy from Begin to End. Null when the group holds no Begin and
     End. */
  function sessionOf(group) {
    const records = group.filter((r) => r.record).map((r) => r.record);
    const begins = records.filter((r) => r.readings[0].tx === "B");
    const ends = records.filter((r) => r.readings[0].tx === "E");
    if (begins.length !== 1 || ends.length !== 1) return null;
    const b = begins[0];
    const e = ends[0];
    const problems = [];
    for (const record of records) {
      for (const name of SESSION_FIELDS) {
        if (JSON.stringify(b.payload[name]) !== JSON.stringify(record.payload[name])) {
          problems.push(`the records differ in ${name}: not one session`);
        }
      }
    }
    const pages = records.map(pagination);
    if (pages.some((p) => !p)) problems.push("pagination unreadable");
    else {
      const order = records.map((r, i) => [pages[i], r]).sort((x, y) => x[0][1] - y[0][1]);
      order.forEach(([page], i) => {
        if (i && (page[0] !== order[0][0][0] || page[1] !== order[i - 1][0][1] + 1)) {
          problems.push(`${order[i][1].payload.PG} does not follow ${order[i - 1][1].payload.PG}: records are missing or foreign`);
        }
      });
      if (order[0][1] !== b) problems.push("the Begin is not the first record");
      if (order[order.length - 1][1] !== e) problems.push("the End is not the last record");
    }
    const br = b.readings[0];
    const er = e.readings[0];
    if (br.instant > er.instant) problems.push("End is signed before Begin");
    let energy = null;
    const start = toWh(br.value, br.unit);
    const stop = toWh(er.value, er.unit);
    if (br.obis !== er.obis || start === null || stop === null) problems.push("Begin and End are not the same register");
    else {
      energy = Math.round(stop - start);
      if (energy < 0) problems.push(`the register went backwards (${energy} Wh)`);
    }
    return { problems: Array.from(new Set(problems)), energy };
  }

  async function checkChargy(doc, typed) {
    const snaps = doc.signedMeterValues;
    const results = [];
    for (let i = 0; i < snaps.length; i++) {
      const obj = snaps[i];
      const label = snaps.length === 2 ? ["Begin", "End"][i] : `snapshot ${i + 1}`;
      const info = (obj && obj.meterInfo) || {};
      const match = keyMatch(info.publicKey, typed);
      const key = typed || match.key;
      const result = { label, match, usedFileKey: !typed };
      try {
        if (!key) {
          const { raw } = snapshotFields(obj);
          result.snapshot = { raw, state: "unchecked", reason: "enter the public key from the station's label" };
        } else {
          result.snapshot = await checkSnapshot(obj, key);
        }
      } catch (e) {
        if (!(e instanceof CheckError)) throw e;
        result.error = e.message;
      }
      results.push(result);
    }
    let pair = null;
    if (results.length === 2 && results.every((r) => r.snapshot)) {
      const [b, e] = results.map((r) => r.snapshot.raw);
      const problems = [];
      if (![1, 3].includes(b.Typ)) problems.push(`Begin is a snapshot of type ${b.Typ}, not a turn-on or start`);
      if (![2, 4].includes(e.Typ)) problems.push(`End is a snapshot of type ${e.Typ}, not a turn-off or end`);
      if (bytesToHex(b.MA1) !== bytesToHex(e.MA1)) problems.push("Begin and End come from different meters");
      for (const m of ["Meta1", "Meta2", "Meta3"]) {
        if (bytesToHex(b[m]) !== bytesToHex(e[m])) problems.push(`Begin and End differ in ${m}: not one session`);
      }
      if (e.RCnt !== b.RCnt + 1) problems.push(`End RCnt ${e.RCnt} does not follow Begin ${b.RCnt}`);
      if (b.EpochSetCnt !== e.EpochSetCnt) problems.push("the meter clock was set during the session");
      const energy = Math.round(scaled(e.RCR, e.wh_sf) - scaled(b.RCR, b.wh_sf));
      pair = { problems, energy };
    } else if (snaps.length !== 2) {
      pair = { problems: [`${snaps.length} snapshots, expected a Begin and an End`], energy: null };
    }
    return { results, pair };
  }

  // ---- showing the results ---------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const child of children) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function verdictCell(state, reason) {
    const words = { valid: "valid", invalid: "INVALID", unsupported: "cannot check here", unchecked: "not checked" };
    return el("td", { class: `v-${state}`, title: reason || "" }, el("strong", {}, words[state] || state), reason ? el("small", {}, reason) : null);
  }

  function billableCell(problems) {
    if (!problems.length) return el("td", { class: "v-valid" }, el("strong", {}, "billable"));
    return el("td", { class: "v-invalid" }, el("strong", {}, "NOT billable"), el("small", {}, problems.join("; ")));
  }

  function keyCell(match, usedFileKey) {
    const cls = match.good === true ? "v-valid" : match.good === false ? "v-invalid" : "v-unchecked";
    const extra = usedFileKey && match.key ? "checked with the key in the data: proves nothing until it matches the label" : "";
    return el("td", { class: cls }, el("strong", {}, match.text), extra ? el("small", {}, extra) : null);
  }

  const HEAD = ["Reading", "Time", "Energy", "Meter", "Signature", "Billable", "Key"];

  function table(rows) {
    return el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, ...HEAD.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows)));
  }

  function labelled(cells) {
    cells.forEach((cell, i) => cell.setAttribute("data-label", HEAD[i]));
    return el("tr", {}, ...cells);
  }

  function readingName(label, reading) {
    const what = TX_NAMES[reading.tx] || reading.tx || "reading";
    return label === what ? what : `${label}: ${what}`;
  }

  function ocmfRows(result) {
    if (result.error) {
      return [el("tr", {}, el("td", {}, result.label), el("td", { class: "v-invalid", colspan: "6" }, result.error))];
    }
    return result.record.readings.map((r) => labelled([
      el("td", {}, readingName(result.label, r)),
      el("td", {}, r.time, r.timeFlag !== "S" ? el("small", {}, `clock ${TIME_FLAGS[r.timeFlag]}`) : null),
      el("td", {}, r.valueText, r.total ? el("small", {}, `meter total ${r.total}`) : null),
      el("td", {}, result.record.meter),
      verdictCell(result.signature.state, result.signature.reason),
      billableCell(r.problems),
      keyCell(result.match, result.usedFileKey),
    ]));
  }

  function chargyRow(result) {
    if (result.error) {
      return el("tr", {}, el("td", {}, result.label), el("td", { class: "v-invalid", colspan: "6" }, result.error));
    }
    const raw = result.snapshot.raw;
    const problems = raw.Evt ? [`meter event flags 0x${raw.Evt.toString(16).padStart(8, "0")}`] : [];
    return labelled([
      el("td", {}, `${result.label} (snapshot ${raw.RCnt})`),
      el("td", {}, snapshotTime(raw)),
      el("td", {}, `${(scaled(raw.RCR, raw.wh_sf) / 1000).toFixed(3)} kWh`, el("small", {}, `meter total ${(scaled(raw.TotWhImp, raw.wh_sf) / 1000).toFixed(3)} kWh`)),
      el("td", {}, new TextDecoder("latin1").decode(raw.MA1)),
      verdictCell(result.snapshot.state, result.snapshot.reason),
      billableCell(problems),
      keyCell(result.match, result.usedFileKey),
    ]);
  }

  function energyLine(wh) {
    return el("p", { class: "energy" }, `Energy of the session: ${(wh / 1000).toFixed(3)} kWh (${wh} Wh)`);
  }

  function summary(ok, text, detail) {
    return el("div", { class: `verdict ${ok}`, role: "status" }, el("strong", {}, text), detail ? el("p", {}, detail) : null);
  }

  function verdictOf(states, problems, typed) {
    if (states.includes("invalid") || problems.length) {
      return summary("bad", "NOT verified: do not rely on these readings", problems.join("; ") || "a signature is invalid");
    }
    if (states.includes("unsupported")) {
      return summary("unknown", "Cannot be checked in this browser", `use ${CLI} for this curve`);
    }
    if (!typed || states.includes("unchecked")) {
      return summary("unknown", "Not confirmed: enter the public key from the station's label",
        "a key that travels with the data proves nothing: anyone who changes the data can change it too");
    }
    return summary("good", "Verified: every signature matches the key you entered, and the readings are billable");
  }

  async function run() {
    const out = $("result");
    out.replaceChildren();
    $("key-info").textContent = "";
    if (!window.crypto || !crypto.subtle) {
      out.append(summary("bad", "This browser does not check signatures on this page",
        "WebCrypto works only over HTTPS or in a saved file: save this page and open the file, or use " + CLI));
      return;
    }
    let typed = null;
    const keyText = $("key").value.trim();
    if (keyText) {
      try {
        typed = parseKey(keyText);
        $("key-info").textContent = typed.foreign ? `a ${typed.foreign} key: this page cannot check it (use ${CLI})` : `key read: ${await describeKey(typed)}`;
      } catch (e) {
        if (!(e instanceof CheckError)) throw e;
        out.append(summary("bad", "The key cannot be read", e.message));
        return;
      }
    }
    let input;
    try {
      input = readInput($("data").value);
    } catch (e) {
      if (!(e instanceof CheckError)) throw e;
      out.append(summary("bad", "The data cannot be read", e.message));
      return;
    }
    const states = [];
    const problems = [];
    const blocks = [];
    if (input.kind === "Chargy JSON") {
      const { results, pair } = await checkChargy(input.doc, typed);
      results.forEach((r) => {
        if (r.error) problems.push(`${r.label}: ${r.error}`);
        else states.push(r.snapshot.state);
        if (r.snapshot && r.snapshot.raw.Evt) problems.push(`${r.label} not billable`);
        if (r.match.good === false) problems.push(`${r.label}: ${r.match.text}`);
      });
      blocks.push(table(results.map(chargyRow)));
      if (pair) {
        problems.push(...pair.problems);
        const proven = results.every((r) => r.snapshot && r.snapshot.state === "valid" && !r.snapshot.raw.Evt);
        if (pair.energy !== null && !pair.problems.length && proven) blocks.push(energyLine(pair.energy));
      }
    } else {
      const results = await checkOcmfItems(input.items, typed);
      const groups = new Map();
      for (const r of results) {
        if (!groups.has(r.group)) groups.set(r.group, []);
        groups.get(r.group).push(r);
        if (r.error) problems.push(`${r.label}: ${r.error}`);
        else {
          states.push(r.signature.state);
          r.record.readings.forEach((reading) => {
            if (reading.problems.length) problems.push(`${r.label}: not billable`);
          });
        }
        if (r.match.good === false) problems.push(`${r.label}: ${r.match.text}`);
      }
      for (const [name, group] of groups) {
        const section = [];
        if (groups.size > 1 || name !== "records") section.push(el("h3", {}, name));
        section.push(table(group.flatMap(ocmfRows)));
        const pair = sessionOf(group);
        if (pair) {
          pair.problems.forEach((p) => problems.push(`${name}: ${p}`));
          const proven = group.every((r) => r.record && r.signature.state === "valid" && r.record.readings.every((x) => !x.problems.length));
          if (pair.energy !== null && !pair.problems.length && proven) section.push(energyLine(pair.energy));
          if (pair.problems.length) section.push(el("p", { class: "v-invalid" }, pair.problems.join("; ")));
        }
        blocks.push(el("section", {}, ...section));
      }
    }
    out.append(verdictOf(states, problems, typed), el("p", {}, `Read as ${input.kind}.`), ...blocks);
  }

  function $(id) {
    return document.getElementById(id);
  }

  function start() {
    const match = /(?:^#|&)key=([^&]+)/.exec(window.location.hash);
    if (match) $("key").value = decodeURIComponent(match[1]);
    $("check").addEventListener("click", () => run().catch(showBug));
    $("file").addEventListener("change", () => {
      const file = $("file").files[0];
      if (file) readFile(file);
    });
    const drop = $("data");
    drop.addEventListener("dragover", (e) => e.preventDefault());
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      if (e.dataTransfer.files.length) readFile(e.dataTransfer.files[0]);
    });
  }

  function readFile(file) {
    if (file.size > 16 * 1024 * 1024) {
      $("result").replaceChildren(summary("bad", "The file is too large for this page", `use ${CLI}`));
      return;
    }
    file.text().then((text) => {
      $("data").value = text;
      return run();
    }).catch(showBug);
  }

  function showBug(error) {
    $("result").replaceChildren(summary("bad", "The check failed", String(error && error.message ? error.message : error)));
  }

  // for tests and the curious: the pieces, on the page's own object
  window.chargepointVerifier = { parseKey, parseOcmf, abstractRepresentation, snapshotFields, derSignatureToRaw, run };
  start();
})();
