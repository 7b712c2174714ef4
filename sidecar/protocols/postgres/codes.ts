// PostgreSQL wire-protocol constants: message type bytes, start-up request codes, limits, and the framing error type.

/** Type byte of each tagged message a client (frontend) sends. */
export const enum FrontendCode {
  Bind = 0x42, // B
  Close = 0x43, // C
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyFail = 0x66, // f
  Describe = 0x44, // D
  Execute = 0x45, // E
  Flush = 0x48, // H
  FunctionCall = 0x46, // F
  /** PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all use 'p': decode by auth context. */
  Password = 0x70, // p
  Parse = 0x50, // P
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
}

/** Type byte of each message a server (backend) sends. */
export const enum BackendCode {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  CommandComplete = 0x43, // C
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  CopyBothResponse = 0x57, // W
  DataRow = 0x44, // D
  EmptyQueryResponse = 0x49, // I
  ErrorResponse = 0x45, // E
  FunctionCallResponse = 0x56, // V
  NegotiateProtocolVersion = 0x76, // v
  NoData = 0x6e, // n
  NoticeResponse = 0x4e, // N
  NotificationResponse = 0x41, // A
  ParameterDescription = 0x74, // t
  ParameterStatus = 0x53, // S
  ParseComplete = 0x31, // 1
  PortalSuspended = 0x73, // s
  ReadyForQuery = 0x5a, // Z
  RowDescription = 0x54, // T
}

/** The Int32 after an AuthenticationRequest's length: which step of authentication this is. */
export const enum AuthCode {
  Ok = 0,
  KerberosV5 = 2,
  CleartextPassword = 3,
  MD5Password = 5,
  GSS = 7,
  GSSContinue = 8,
  SSPI = 9,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

/** Protocol 3.0 as sent in a StartupMessage: major 3 in the high 16 bits, minor 0. */
export const PROTOCOL_3_0 = 196608;
/** Protocol 3.2 (PostgreSQL 18): variable-length cancel keys; servers answer newer minors with NegotiateProtocolVersion. */
export const PROTOCOL_3_2 = 196610;
/** Request codes that share the version slot of an untagged start-up packet (1234 in the high half). */
export const CANCEL_REQUEST_CODE = 80877102; // 1234.5678
export const SSL_REQUEST_CODE = 80877103; // 1234.5679
export const GSSENC_REQUEST_CODE = 80877104; // 1234.5680

/** PostgreSQL's MAX_STARTUP_PACKET_LENGTH: a longer untagged start-up packet is refused. */
export const MAX_STARTUP_PACKET_LENGTH = 10000;
/** Our default cap on one tagged message (header included); PostgreSQL's own hard cap is 1 GiB. */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
/** Cancel keys are 4 bytes in 3.0 and 4..256 bytes in 3.2 (protocol docs, BackendKeyData). */
export const MIN_CANCEL_KEY_LENGTH = 4;
export const MAX_CANCEL_KEY_LENGTH = 256;

/** First byte of a TLS record: a client using PostgreSQL 17 `sslnegotiation=direct` starts with a ClientHello. */
export const TLS_HANDSHAKE_BYTE = 0x16;

/** What was wrong with the bytes; stable so callers and tests can tell failures apart. */
export type ProtocolErrorCode =
  | 'length_too_small'
  | 'message_too_large'
  | 'startup_too_large'
  | 'unsupported_protocol_version'
  | 'direct_ssl_unsupported'
  | 'unknown_message_type'
  | 'unexpected_data'
  | 'malformed_message'
  | 'invalid_utf8'
  | 'incomplete_message'
  | 'framer_failed';

/** SQLSTATE a proxy should send in the FATAL ErrorResponse for each failure. */
const SQLSTATE: Readonly<Record<ProtocolErrorCode, string>> = {
  length_too_small: '08P01',
  message_too_large: '08P01',
  startup_too_large: '08P01',
  unsupported_protocol_version: '0A000',
  direct_ssl_unsupported: '08P01',
  unknown_message_type: '08P01',
  unexpected_data: '08P01',
  malformed_message: '08P01',
  invalid_utf8: '22021',
  incomplete_message: '08P01',
  framer_failed: '08P01',
};

/** The one error type the framers, decoders and serializers throw for bad wire data. */
export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  /** SQLSTATE for the FATAL ErrorResponse (08P01 protocol_violation for most). */
  readonly sqlState: string;

  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.sqlState = SQLSTATE[code];
  }
}

/** "'Q' (0x51)": how errors name a type byte so a non-printable one is still readable. */
export function describeCode(code: number): string {
  const hex = `0x${code.toString(16).padStart(2, '0')}`;
  return code >= 0x20 && code < 0x7f ? `'${String.fromCharCode(code)}' (${hex})` : hex;
}
