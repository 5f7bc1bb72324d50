export * from './manifest';
export * from './chunks';
export * from './encrypt-file';
export * from './range';
