/**
 * Local persistence. Everything stored through here is ciphertext or
 * non-extractable key material; this folder never sees plaintext.
 */
export {
	DocPersistence,
	DEFAULT_COMPACT_THRESHOLD,
	DEFAULT_MERGE_CHUNK,
	DEFAULT_FREEZE_BYTES,
	type CompactOptions,
	type DocPersistenceEvents,
	type DocPersistenceOptions,
	type RefusedUpdate,
	type StoredStats
} from './doc-persistence';
export { LocalStore, LOCAL_DB_NAME } from './local-store';
export { requestPersistentStorage, storageEstimate, isQuotaError } from './quota';
export { dumpAllIndexedDb, type DumpedRecord } from './dump';
export { deleteDatabase, eraseLocalData, EraseError } from './erase';
export { StorageError, StorageQuotaError, StorageWriteError, StorageReadError } from './errors';
