/**
 * The largest packet a connection may send, enforced from each packet's fixed header: the MQTT
 * parsers (aedes' and mqtt-packet's) buffer a whole packet, up to 256 MB, before anything looks
 * at it. This walks the byte stream beside them, reading only the fixed headers (a type byte and
 * the remaining length, MQTT 3.1.1 and 5 §2.2) and skipping the rest, so a connection announcing
 * an oversized packet is cut off after its first few bytes.
 */
export class PacketSizeGuard {
  /** Bytes of the current packet still to come after its fixed header. */
  private skip = 0;
  /** Bytes of the current fixed header read so far (0: the next byte starts a packet). */
  private headerBytes = 0;
  private remaining = 0;
  private multiplier = 1;
  private exceeded = false;

  /** `maxPacketSize`: the whole packet, fixed header included (MQTT 5's Maximum Packet Size). */
  constructor(readonly maxPacketSize: number) {}

  /** Takes the next bytes of the stream; false once a packet announced more than allowed (or a malformed length). */
  feed(chunk: Buffer): boolean {
    if (this.exceeded) return false;
    let at = 0;
    while (at < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        this.skip -= n;
        at += n;
        continue;
      }
      const byte = chunk[at++]!;
      if (this.headerBytes === 0) {
        this.headerBytes = 1;
        this.remaining = 0;
        this.multiplier = 1;
        continue;
      }
      this.headerBytes += 1;
      this.remaining += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if (byte & 0x80) {
        // At most four bytes of remaining length: a fifth is malformed (the parsers refuse it too).
        if (this.headerBytes > 4) return this.refuse();
        continue;
      }
      if (this.headerBytes + this.remaining > this.maxPacketSize) return this.refuse();
      this.skip = this.remaining;
      this.headerBytes = 0;
    }
    return true;
  }

  private refuse(): false {
    this.exceeded = true;
    return false;
  }
}
