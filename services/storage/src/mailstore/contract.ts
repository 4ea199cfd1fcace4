/** The contract names the mailstore uses, in one place (generated code: libs/contracts). */
import { mailstore } from '@postmesh/contracts';

export { ErrorReason } from '@postmesh/contracts';
export const SpecialUseValues = mailstore.SpecialUse;
export type SpecialUseValue = mailstore.SpecialUse;
export const StoreModes = mailstore.StoreMode;
export type StoreModeValue = mailstore.StoreMode;
export const FetchFields = mailstore.FetchField;
export type FetchFieldValue = mailstore.FetchField;
