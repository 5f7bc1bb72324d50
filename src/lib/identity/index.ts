export * from './keyring';
export * from './certificates';
export * from './recovery-key';
