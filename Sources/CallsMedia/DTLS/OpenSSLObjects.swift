internal import CCallsOpenSSL

/// Owns one OpenSSL private key (`EVP_PKEY *`) and frees it in `deinit`.
final class OpenSSLPrivateKey {
    let pointer: OpaquePointer  // EVP_PKEY *

    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    /// Generates an ECDSA P-256 key (`EVP_EC_gen` is a variadic macro Swift cannot call, hence the long form).
    static func generateP256() throws(DTLSError) -> OpenSSLPrivateKey {
        OpenSSLErrorQueue.clear()
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else {
            throw .drained(.identityGeneration, "EVP_PKEY_CTX_new_from_name(EC) failed")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_group_name(context, "P-256") == 1 else {
            throw .drained(.identityGeneration, "cannot prepare P-256 key generation")
        }
        var key: OpaquePointer? = nil
        guard EVP_PKEY_generate(context, &key) == 1, let key else {
            throw .drained(.identityGeneration, "EVP_PKEY_generate(P-256) failed")
        }
        return OpenSSLPrivateKey(taking: key)
    }
}

/// Owns one OpenSSL certificate (`X509 *`) and frees it in `deinit`.
final class OpenSSLCertificate {
    let pointer: OpaquePointer  // X509 *

    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        X509_free(pointer)
    }

    /// A self-signed X.509 v3 certificate for `key`, valid from one day ago (clock skew) for `validity`.
    static func selfSigned(
        key: OpenSSLPrivateKey,
        commonName: String,
        validity: Duration
    ) throws(DTLSError) -> OpenSSLCertificate {
        OpenSSLErrorQueue.clear()
        guard let x509 = X509_new() else { throw .drained(.identityGeneration, "X509_new failed") }
        let certificate = OpenSSLCertificate(taking: x509)
        let name = Array(commonName.utf8)
        let subject = X509_get_subject_name(x509)
        let serial = UInt64.random(in: 1...UInt64(Int64.max))  // positive, as RFC 5280 §4.1.2.2 requires
        guard X509_set_version(x509, 2) == 1,  // 2 means v3
            ASN1_INTEGER_set_uint64(X509_get_serialNumber(x509), serial) == 1,
            X509_gmtime_adj(X509_getm_notBefore(x509), -86_400) != nil,
            X509_gmtime_adj(X509_getm_notAfter(x509), Int(validity.components.seconds)) != nil,
            X509_set_pubkey(x509, key.pointer) == 1,
            X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, name, Int32(name.count), -1, 0) == 1,
            X509_set_issuer_name(x509, subject) == 1,
            X509_sign(x509, key.pointer, EVP_sha256()) > 0
        else {
            throw .drained(.identityGeneration, "cannot build the self-signed certificate")
        }
        return certificate
    }
}

@available(*, unavailable)
extension OpenSSLPrivateKey: Sendable {}

@available(*, unavailable)
extension OpenSSLCertificate: Sendable {}
