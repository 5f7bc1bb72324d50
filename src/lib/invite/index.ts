/**
 * Invitations: signed, expiring invite links; the invite room where a joiner
 * meets the members; join requests and admissions; X25519 lockboxes; QR codes.
 * Formats: docs/protocol.md, "Invitations (v1)".
 */
export * from './errors';
export * from './schemas';
export * from './lockbox';
export * from './invite-room';
export * from './invitation';
export * from './messages';
export * from './qr';
export * from './admitted';
