// Decoded PostgreSQL messages: readonly types told apart by `name`, bodiless ones as shared constants, and raw frames.
import type { BackendCode, FrontendCode } from './codes.ts';

/** Where a frame came from in the untagged start-up phase, or 'tagged' for every ordinary message. */
export type FrontendFrameKind = 'startup' | 'ssl-request' | 'gssenc-request' | 'cancel-request' | 'tagged';

/**
 * One whole client message exactly as it arrived. `raw` is a view of the received bytes (a copy only
 * when the message straddled chunks); it is never reused by the framer, so it may be kept and forwarded.
 */
export interface FrontendFrame {
  readonly kind: FrontendFrameKind;
  /** The type byte for tagged messages (the framer admits known codes only); 0 for untagged start-up packets. */
  readonly code: FrontendCode | 0;
  /** The whole message: type byte (if any), Int32 length and body. */
  readonly raw: Buffer;
  /** Index in `raw` where the body starts: 5 when tagged, 4 when untagged (the version/request code is body). */
  readonly bodyOffset: number;
}

/** One whole server message exactly as it arrived; `raw` is never reused by the framer. */
export interface BackendFrame {
  /** A known type byte, unless the framer was built with `allowUnknown`. */
  readonly code: BackendCode;
  readonly raw: Buffer;
  /** Always 5: type byte and Int32 length. Kept for symmetry with FrontendFrame. */
  readonly bodyOffset: number;
}

/** 0 = text, 1 = binary (the only two format codes PostgreSQL defines). */
export type FormatCode = 0 | 1;

// ---- frontend: start-up phase ----

export interface StartupMessage {
  readonly name: 'startupMessage';
  /** Major in the high 16 bits, minor in the low 16 (196608 = 3.0). */
  readonly protocolVersion: number;
  readonly major: number;
  readonly minor: number;
  /** Parameters in wire order (user, database, options, application_name, `_pq_.*` protocol options, …). */
  readonly parameters: ReadonlyMap<string, string>;
}

export interface SSLRequest {
  readonly name: 'sslRequest';
}

export interface GSSENCRequest {
  readonly name: 'gssEncRequest';
}

export interface CancelRequest {
  readonly name: 'cancelRequest';
  readonly processId: number;
  /** 4 bytes in protocol 3.0, up to 256 in 3.2. */
  readonly secretKey: Buffer;
}

export const sslRequest: SSLRequest = { name: 'sslRequest' };
export const gssEncRequest: GSSENCRequest = { name: 'gssEncRequest' };

// ---- frontend: tagged ----

export interface QueryMessage {
  readonly name: 'query';
  readonly sql: string;
}

export interface ParseMessage {
  readonly name: 'parse';
  /** '' = the unnamed statement. */
  readonly statement: string;
  readonly sql: string;
  /** Parameter type OIDs (0 = let the server infer). */
  readonly paramTypes: readonly number[];
}

export interface BindMessage {
  readonly name: 'bind';
  readonly portal: string;
  readonly statement: string;
  /** Zero (all text), one (applies to all) or one per parameter. */
  readonly paramFormats: readonly FormatCode[];
  /** Views into the frame; null is SQL NULL (length -1). */
  readonly params: readonly (Buffer | null)[];
  readonly resultFormats: readonly FormatCode[];
}

export type DescribeTarget = 'S' | 'P';

export interface DescribeMessage {
  readonly name: 'describe';
  /** 'S' prepared statement, 'P' portal. */
  readonly target: DescribeTarget;
  readonly targetName: string;
}

export interface CloseMessage {
  readonly name: 'close';
  readonly target: DescribeTarget;
  readonly targetName: string;
}

export interface ExecuteMessage {
  readonly name: 'execute';
  readonly portal: string;
  /** 0 = no limit. */
  readonly maxRows: number;
}

export interface CopyDataMessage {
  readonly name: 'copyData';
  /** A view into the frame. */
  readonly data: Buffer;
}

export interface CopyFailMessage {
  readonly name: 'copyFail';
  readonly message: string;
}

export interface PasswordMessage {
  readonly name: 'passwordMessage';
  readonly password: string;
}

export interface SASLInitialResponseMessage {
  readonly name: 'saslInitialResponse';
  readonly mechanism: string;
  /** null when the client sent length -1 (no initial response). */
  readonly data: Buffer | null;
}

export interface SASLResponseMessage {
  readonly name: 'saslResponse';
  readonly data: Buffer;
}

export interface FunctionCallMessage {
  readonly name: 'functionCall';
  readonly functionOid: number;
  readonly argFormats: readonly FormatCode[];
  readonly args: readonly (Buffer | null)[];
  readonly resultFormat: FormatCode;
}

export interface SyncMessage {
  readonly name: 'sync';
}
export interface FlushMessage {
  readonly name: 'flush';
}
export interface TerminateMessage {
  readonly name: 'terminate';
}
export interface CopyDoneMessage {
  readonly name: 'copyDone';
}

export const sync: SyncMessage = { name: 'sync' };
export const flush: FlushMessage = { name: 'flush' };
export const terminate: TerminateMessage = { name: 'terminate' };
export const copyDone: CopyDoneMessage = { name: 'copyDone' };

/** Every message the start-up phase yields. */
export type StartupPhaseMessage = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

/** Every tagged client message a frame decodes to without auth context ('p' needs context: see decodePassword…). */
export type FrontendMessage =
  | QueryMessage
  | ParseMessage
  | BindMessage
  | DescribeMessage
  | CloseMessage
  | ExecuteMessage
  | CopyDataMessage
  | CopyFailMessage
  | FunctionCallMessage
  | SyncMessage
  | FlushMessage
  | TerminateMessage
  | CopyDoneMessage;

/** What a 'p' message is depends on the authentication request the server (or the proxy) sent. */
export type PasswordFamilyMessage = PasswordMessage | SASLInitialResponseMessage | SASLResponseMessage;

// ---- backend ----

export interface AuthenticationOk {
  readonly name: 'authenticationOk';
}
export interface AuthenticationKerberosV5 {
  readonly name: 'authenticationKerberosV5';
}
export interface AuthenticationCleartextPassword {
  readonly name: 'authenticationCleartextPassword';
}
export interface AuthenticationMD5Password {
  readonly name: 'authenticationMD5Password';
  /** 4 bytes. */
  readonly salt: Buffer;
}
export interface AuthenticationGSS {
  readonly name: 'authenticationGSS';
}
export interface AuthenticationSSPI {
  readonly name: 'authenticationSSPI';
}
export interface AuthenticationGSSContinue {
  readonly name: 'authenticationGSSContinue';
  readonly data: Buffer;
}
export interface AuthenticationSASL {
  readonly name: 'authenticationSASL';
  readonly mechanisms: readonly string[];
}
export interface AuthenticationSASLContinue {
  readonly name: 'authenticationSASLContinue';
  readonly data: Buffer;
}
export interface AuthenticationSASLFinal {
  readonly name: 'authenticationSASLFinal';
  readonly data: Buffer;
}

export const authenticationOk: AuthenticationOk = { name: 'authenticationOk' };
export const authenticationKerberosV5: AuthenticationKerberosV5 = { name: 'authenticationKerberosV5' };
export const authenticationCleartextPassword: AuthenticationCleartextPassword = { name: 'authenticationCleartextPassword' };
export const authenticationGSS: AuthenticationGSS = { name: 'authenticationGSS' };
export const authenticationSSPI: AuthenticationSSPI = { name: 'authenticationSSPI' };

export type AuthenticationMessage =
  | AuthenticationOk
  | AuthenticationKerberosV5
  | AuthenticationCleartextPassword
  | AuthenticationMD5Password
  | AuthenticationGSS
  | AuthenticationSSPI
  | AuthenticationGSSContinue
  | AuthenticationSASL
  | AuthenticationSASLContinue
  | AuthenticationSASLFinal;

export interface BackendKeyData {
  readonly name: 'backendKeyData';
  readonly processId: number;
  /** 4 bytes in protocol 3.0, 4..256 in 3.2. */
  readonly secretKey: Buffer;
}

export interface ParameterStatus {
  readonly name: 'parameterStatus';
  readonly parameter: string;
  readonly value: string;
}

export type TransactionStatus = 'I' | 'T' | 'E';

export interface ReadyForQuery {
  readonly name: 'readyForQuery';
  /** I idle, T in a transaction block, E in a failed transaction block. */
  readonly status: TransactionStatus;
}

export interface CommandComplete {
  readonly name: 'commandComplete';
  /** e.g. "SELECT 3", "INSERT 0 1". */
  readonly tag: string;
}

export interface RowField {
  readonly name: string;
  /** 0 when the column is not a table column. */
  readonly tableOid: number;
  readonly columnAttr: number;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typeModifier: number;
  readonly format: FormatCode;
}

export interface RowDescription {
  readonly name: 'rowDescription';
  readonly fields: readonly RowField[];
}

export interface DataRow {
  readonly name: 'dataRow';
  /** Views into the frame (no copy); null is SQL NULL. */
  readonly cells: readonly (Buffer | null)[];
}

/** ErrorResponse/NoticeResponse field type letters (protocol docs, "Error and Notice Message Fields"). */
export type ErrorFieldCode = 'S' | 'V' | 'C' | 'M' | 'D' | 'H' | 'P' | 'p' | 'q' | 'W' | 's' | 't' | 'c' | 'd' | 'n' | 'F' | 'L' | 'R';

/**
 * Fields by their one-letter code, in wire order. Unknown letters are kept (clients ignore them, but
 * every byte must still be masked); a duplicated letter is refused so the map covers every byte.
 */
export type ErrorFields = ReadonlyMap<string, string>;

export interface ErrorResponse {
  readonly name: 'errorResponse';
  readonly fields: ErrorFields;
}

export interface NoticeResponse {
  readonly name: 'noticeResponse';
  readonly fields: ErrorFields;
}

export interface NotificationResponse {
  readonly name: 'notificationResponse';
  readonly processId: number;
  readonly channel: string;
  readonly payload: string;
}

export interface CopyResponse {
  readonly name: 'copyInResponse' | 'copyOutResponse' | 'copyBothResponse';
  /** Overall format: 0 textual, 1 binary. */
  readonly format: FormatCode;
  readonly columnFormats: readonly FormatCode[];
}

export interface ParameterDescription {
  readonly name: 'parameterDescription';
  readonly typeOids: readonly number[];
}

export interface NegotiateProtocolVersion {
  readonly name: 'negotiateProtocolVersion';
  /** Newest minor version of the requested major the server supports. */
  readonly newestMinor: number;
  /** `_pq_.*` options from the StartupMessage the server did not recognize. */
  readonly unrecognizedOptions: readonly string[];
}

export interface FunctionCallResponse {
  readonly name: 'functionCallResponse';
  readonly value: Buffer | null;
}

export interface ParseComplete {
  readonly name: 'parseComplete';
}
export interface BindComplete {
  readonly name: 'bindComplete';
}
export interface CloseComplete {
  readonly name: 'closeComplete';
}
export interface NoData {
  readonly name: 'noData';
}
export interface PortalSuspended {
  readonly name: 'portalSuspended';
}
export interface EmptyQueryResponse {
  readonly name: 'emptyQueryResponse';
}

export const parseComplete: ParseComplete = { name: 'parseComplete' };
export const bindComplete: BindComplete = { name: 'bindComplete' };
export const closeComplete: CloseComplete = { name: 'closeComplete' };
export const noData: NoData = { name: 'noData' };
export const portalSuspended: PortalSuspended = { name: 'portalSuspended' };
export const emptyQueryResponse: EmptyQueryResponse = { name: 'emptyQueryResponse' };

export type BackendMessage =
  | AuthenticationMessage
  | BackendKeyData
  | ParameterStatus
  | ReadyForQuery
  | CommandComplete
  | RowDescription
  | DataRow
  | ErrorResponse
  | NoticeResponse
  | NotificationResponse
  | CopyResponse
  | CopyDataMessage
  | CopyDoneMessage
  | ParameterDescription
  | NegotiateProtocolVersion
  | FunctionCallResponse
  | ParseComplete
  | BindComplete
  | CloseComplete
  | NoData
  | PortalSuspended
  | EmptyQueryResponse;
