export * from './notification';
export * from './keys';
