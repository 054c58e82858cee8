import NIOCore

/// The magic cookie of RFC 8489 §5. Also the XOR mask for IPv4 addresses and (its top half) ports.
let stunMagicCookie: UInt32 = 0x2112_A442

extension STUNAttribute {
    /// Decodes one attribute value. The caller has already checked that `index..<index+length` lies
    /// inside the message; every read below still goes through ``WireReader``'s bounds checks, and
    /// anything that does not fit its type's layout falls back to `.raw` instead of failing.
    static func decode(
        type: UInt16, from reader: WireReader, at index: Int, length: Int, transactionID: STUNTransactionID
    ) -> STUNAttribute {
        if let typed = decodeTyped(type: type, reader, index, length, transactionID) { return typed }
        let bytes = reader.array(index, length) ?? []
        return .raw(type: STUNAttributeType(rawValue: type), value: bytes)
    }

    private static func decodeTyped(
        type: UInt16, _ b: WireReader, _ i: Int, _ len: Int, _ tid: STUNTransactionID
    ) -> STUNAttribute? {
        switch type {
        case 0x0001: return b.stunAddress(at: i, length: len, xor: nil).map(STUNAttribute.mappedAddress)
        case 0x0004: return b.stunAddress(at: i, length: len, xor: nil).map(STUNAttribute.sourceAddress)
        case 0x0005: return b.stunAddress(at: i, length: len, xor: nil).map(STUNAttribute.changedAddress)
        case 0x8023: return b.stunAddress(at: i, length: len, xor: nil).map(STUNAttribute.alternateServer)
        case 0x802B: return b.stunAddress(at: i, length: len, xor: nil).map(STUNAttribute.responseOrigin)
        case 0x802C: return b.stunAddress(at: i, length: len, xor: nil).map(STUNAttribute.otherAddress)
        case 0x0020: return b.stunAddress(at: i, length: len, xor: tid).map(STUNAttribute.xorMappedAddress)
        case 0x0012: return b.stunAddress(at: i, length: len, xor: tid).map(STUNAttribute.xorPeerAddress)
        case 0x0016: return b.stunAddress(at: i, length: len, xor: tid).map(STUNAttribute.xorRelayedAddress)
        case 0x0003:
            guard len == 4, let v = b.u32(i) else { return nil }
            return .changeRequest(STUNChangeRequest(rawValue: v))
        case 0x0006: return b.text(i, len).map(STUNAttribute.username)
        case 0x0014: return b.text(i, len).map(STUNAttribute.realm)
        case 0x0015: return b.text(i, len).map(STUNAttribute.nonce)
        case 0x8022: return b.text(i, len).map(STUNAttribute.software)
        case 0x8003: return b.text(i, len).map(STUNAttribute.alternateDomain)
        case 0x001E:
            guard len == 32 else { return nil }
            return b.array(i, len).map(STUNAttribute.userhash)
        case 0x0008:
            // RFC 8489 §14.5: exactly 20 bytes of HMAC-SHA1.
            guard len == 20 else { return nil }
            return b.array(i, len).map(STUNAttribute.messageIntegrity)
        case 0x001C:
            // RFC 8489 §14.6: "at least 16 bytes and at most 32 bytes", a multiple of 4.
            guard len >= 16, len <= 32, len % 4 == 0 else { return nil }
            return b.array(i, len).map(STUNAttribute.messageIntegritySHA256)
        case 0x8028: return b.exactInteger(at: i, length: len, as: UInt32.self).map(STUNAttribute.fingerprint)
        case 0x0009: return b.stunErrorCode(at: i, length: len).map(STUNAttribute.errorCode)
        case 0x8001:
            guard len >= 4, let raw = b.u8(i),
                let family = STUNAddress.Family(rawValue: raw),
                let error = b.stunErrorCode(at: i, length: len)
            else { return nil }
            return .addressErrorCode(STUNAddressErrorCode(family: family, error: error))
        case 0x8002:
            var entries = [STUNPasswordAlgorithm]()
            var p = i
            let end = i + len
            while p < end {
                guard let (entry, next) = b.passwordAlgorithm(at: p, end: end) else { return nil }
                entries.append(entry)
                p = next
            }
            return .passwordAlgorithms(entries)
        case 0x001D:
            guard let (entry, next) = b.passwordAlgorithm(at: i, end: i + len), next >= i + len else { return nil }
            return .passwordAlgorithm(entry)
        case 0x000A:
            // RFC 8489 §14.13: a list of 16-bit types.
            guard len % 2 == 0 else { return nil }
            var types = [STUNAttributeType]()
            types.reserveCapacity(len / 2)
            var p = i
            while p < i + len {
                guard let t = b.u16(p) else { return nil }
                types.append(STUNAttributeType(rawValue: t))
                p += 2
            }
            return .unknownAttributes(types)
        case 0x000C:
            guard len == 4, let n = b.u16(i) else { return nil }
            return .channelNumber(n)
        case 0x000D: return b.exactInteger(at: i, length: len, as: UInt32.self).map(STUNAttribute.lifetime)
        case 0x0013: return b.array(i, len).map(STUNAttribute.data)
        case 0x0017, 0x8000:
            guard len == 4, let raw = b.u8(i),
                let family = STUNAddress.Family(rawValue: raw)
            else { return nil }
            return type == 0x0017 ? .requestedAddressFamily(family) : .additionalAddressFamily(family)
        case 0x0018:
            guard len == 1, let v = b.u8(i) else { return nil }
            return .evenPort(reserveNextPort: v & 0x80 != 0)
        case 0x0019:
            guard len == 4, let proto = b.u8(i) else { return nil }
            return .requestedTransport(proto)
        case 0x001A: return len == 0 ? .dontFragment : nil
        case 0x0022:
            return b.exactInteger(at: i, length: len, as: UInt64.self).map(STUNAttribute.reservationToken)
        case 0x8004:
            guard len == 8, let t = b.u8(i + 2),
                let c = b.u8(i + 3),
                let d = b.u32(i + 4)
            else { return nil }
            return .icmp(STUNICMP(type: t, code: c, errorData: d))
        case 0x0024: return b.exactInteger(at: i, length: len, as: UInt32.self).map(STUNAttribute.priority)
        case 0x0025: return len == 0 ? .useCandidate : nil
        case 0x8029: return b.exactInteger(at: i, length: len, as: UInt64.self).map(STUNAttribute.iceControlled)
        case 0x802A: return b.exactInteger(at: i, length: len, as: UInt64.self).map(STUNAttribute.iceControlling)
        case 0x0026: return b.array(i, len).map(STUNAttribute.padding)
        case 0x0027:
            guard len == 4, let port = b.u16(i) else { return nil }
            return .responsePort(port)
        case 0x8027: return b.exactInteger(at: i, length: len, as: UInt32.self).map(STUNAttribute.cacheTimeout)
        case 0x002A: return b.exactInteger(at: i, length: len, as: UInt32.self).map(STUNAttribute.connectionID)
        default: return nil
        }
    }

    /// Writes the attribute *value* (no TLV header, no padding) and returns its length.
    func writeValue(into buffer: inout ByteBuffer, transactionID tid: STUNTransactionID) throws(WireError) -> Int {
        switch self {
        case .mappedAddress(let a), .alternateServer(let a), .responseOrigin(let a), .otherAddress(let a),
            .sourceAddress(let a), .changedAddress(let a):
            return buffer.writeSTUNAddress(a, xor: nil)
        case .xorMappedAddress(let a), .xorPeerAddress(let a), .xorRelayedAddress(let a):
            return buffer.writeSTUNAddress(a, xor: tid)
        case .changeRequest(let v): return buffer.writeInteger(v.rawValue)
        case .username(let s), .realm(let s), .nonce(let s), .software(let s), .alternateDomain(let s):
            return buffer.writeString(s)
        case .userhash(let v), .messageIntegrity(let v), .messageIntegritySHA256(let v), .data(let v),
            .padding(let v):
            return buffer.writeBytes(v)
        case .fingerprint(let v), .lifetime(let v), .priority(let v), .cacheTimeout(let v), .connectionID(let v):
            return buffer.writeInteger(v)
        case .errorCode(let e):
            return try buffer.writeSTUNErrorCode(e, firstByte: 0)
        case .addressErrorCode(let a):
            return try buffer.writeSTUNErrorCode(a.error, firstByte: a.family.rawValue)
        case .passwordAlgorithms(let list):
            var n = 0
            for entry in list { n += try buffer.writePasswordAlgorithm(entry) }
            return n
        case .passwordAlgorithm(let entry):
            return try buffer.writePasswordAlgorithm(entry)
        case .unknownAttributes(let types):
            var n = 0
            for t in types { n += buffer.writeInteger(t.rawValue) }
            return n
        case .channelNumber(let n):
            return buffer.writeInteger(n) + buffer.writeInteger(UInt16(0))
        case .requestedAddressFamily(let f), .additionalAddressFamily(let f):
            return buffer.writeInteger(f.rawValue) + buffer.writeInteger(UInt8(0)) + buffer.writeInteger(UInt16(0))
        case .evenPort(let r):
            return buffer.writeInteger(UInt8(r ? 0x80 : 0))
        case .requestedTransport(let p):
            return buffer.writeInteger(p) + buffer.writeInteger(UInt8(0)) + buffer.writeInteger(UInt16(0))
        case .dontFragment, .useCandidate:
            return 0
        case .reservationToken(let v), .iceControlled(let v), .iceControlling(let v):
            return buffer.writeInteger(v)
        case .icmp(let v):
            return buffer.writeInteger(UInt16(0)) + buffer.writeInteger(v.type) + buffer.writeInteger(v.code)
                + buffer.writeInteger(v.errorData)
        case .responsePort(let p):
            return buffer.writeInteger(p) + buffer.writeInteger(UInt16(0))
        case .raw(_, let v):
            return buffer.writeBytes(v)
        }
    }
}

extension WireReader {
    /// Reads a big-endian integer only if the field is exactly its size.
    fileprivate func exactInteger<T: FixedWidthInteger>(at index: Int, length: Int, as: T.Type) -> T? {
        guard length == MemoryLayout<T>.size, contains(index, length) else { return nil }
        var v: T = 0
        for k in 0..<length { v = v << 8 | T(bytes[index + k]) }
        return v
    }

    /// RFC 8489 §14.1/§14.2 address value: 1 reserved byte, family, port, 4 or 16 address bytes.
    /// With `xor` set, undoes the XOR-MAPPED-ADDRESS masking: port ^ top 16 bits of the cookie,
    /// IPv4 ^ cookie, IPv6 ^ (cookie ‖ transaction ID).
    fileprivate func stunAddress(at i: Int, length: Int, xor tid: STUNTransactionID?) -> STUNAddress? {
        guard length == 8 || length == 20,
            let familyByte = u8(i + 1),
            let family = STUNAddress.Family(rawValue: familyByte),
            var port = u16(i + 2)
        else { return nil }
        if tid != nil { port ^= UInt16(stunMagicCookie >> 16) }
        switch family {
        case .ipv4:
            guard length == 8, var v = u32(i + 4) else { return nil }
            if tid != nil { v ^= stunMagicCookie }
            return STUNAddress(ipv4: v, port: port)
        case .ipv6:
            guard length == 20, var h = u64(i + 4), var l = u64(i + 12) else { return nil }
            if let tid {
                let mask = ipv6XORMask(tid)
                h ^= mask.0
                l ^= mask.1
            }
            return STUNAddress(ipv6High: h, low: l, port: port)
        }
    }

    /// ERROR-CODE layout (RFC 8489 §14.8): 21 reserved bits, 3-bit class, 8-bit number (0–99), reason.
    /// ADDRESS-ERROR-CODE (RFC 8656 §18.12) is the same with the family in the first byte.
    fileprivate func stunErrorCode(at i: Int, length: Int) -> STUNErrorCode? {
        guard length >= 4, let classByte = u8(i + 2), let number = u8(i + 3), number <= 99 else { return nil }
        // coturn 4.6.1 NUL-pads reason phrases ("...wrong transaction ID\0"); strip trailing NULs
        // so the phrase compares and prints cleanly.
        var reasonLength = length - 4
        while reasonLength > 0, u8(i + 4 + reasonLength - 1) == 0 { reasonLength -= 1 }
        guard let reason = text(i + 4, reasonLength) else { return nil }
        return STUNErrorCode(code: UInt16(classByte & 0x07) * 100 + UInt16(number), reason: reason)
    }

    /// One PASSWORD-ALGORITHMS entry (RFC 8489 §14.11): algorithm, parameter length, parameters
    /// padded to 4 bytes. Returns the entry and the index after its padding.
    fileprivate func passwordAlgorithm(at i: Int, end: Int) -> (STUNPasswordAlgorithm, Int)? {
        guard end - i >= 4, let number = u16(i), let paramLength = u16(i + 2),
            Int(paramLength) <= end - i - 4,
            let params = array(i + 4, Int(paramLength))
        else { return nil }
        let next = i + 4 + paddedLength(Int(paramLength))
        guard next <= end else { return nil }
        return (STUNPasswordAlgorithm(number: number, parameters: params), next)
    }
}

extension ByteBuffer {
    @discardableResult
    fileprivate mutating func writeSTUNAddress(_ a: STUNAddress, xor tid: STUNTransactionID?) -> Int {
        var n = writeInteger(UInt8(0)) + writeInteger(a.family.rawValue)
        n += writeInteger(tid == nil ? a.port : a.port ^ UInt16(stunMagicCookie >> 16))
        switch a.family {
        case .ipv4:
            let v = UInt32(truncatingIfNeeded: a.low)
            n += writeInteger(tid == nil ? v : v ^ stunMagicCookie)
        case .ipv6:
            let mask = tid.map(ipv6XORMask) ?? (0, 0)
            n += writeInteger(a.high ^ mask.0)
            n += writeInteger(a.low ^ mask.1)
        }
        return n
    }

    fileprivate mutating func writeSTUNErrorCode(_ e: STUNErrorCode, firstByte: UInt8) throws(WireError) -> Int {
        guard e.code < 800 else {
            throw WireError(.invalidArgument, at: 0, "error code \(e.code) does not fit the 3-bit class field")
        }
        return writeInteger(firstByte) + writeInteger(UInt8(0)) + writeInteger(e.errorClass)
            + writeInteger(e.number) + writeString(e.reason)
    }

    fileprivate mutating func writePasswordAlgorithm(_ p: STUNPasswordAlgorithm) throws(WireError) -> Int {
        guard p.parameters.count <= 0xFFFF else {
            throw WireError(.valueTooLarge, at: 0, "password algorithm parameters exceed 65535 bytes")
        }
        var n = writeInteger(p.number) + writeInteger(UInt16(p.parameters.count)) + writeBytes(p.parameters)
        n += writeRepeatingByte(0, count: paddedLength(p.parameters.count) - p.parameters.count)
        return n
    }
}

/// (cookie ‖ transaction ID) as two 64-bit halves, the IPv6 XOR mask of RFC 8489 §14.2.
func ipv6XORMask(_ tid: STUNTransactionID) -> (UInt64, UInt64) {
    let high = (UInt64(stunMagicCookie) << 32) | (tid.high >> 32)
    let low = (tid.high << 32) | UInt64(tid.low)
    return (high, low)
}

/// Rounds up to the next multiple of 4 (RFC 8489 §14: attributes start on 32-bit boundaries).
@inline(__always)
func paddedLength(_ n: Int) -> Int { (n &+ 3) & ~3 }
