export * from './bytes';
export * from './ids';
export * from './hash';
export * from './errors';
export * from './sign';
export * from './aead';
export * from './padding';
export * from './passphrase';
