package blobstore

// The metadata keys, for the tests.
const (
	MetaClass  = metaClass
	MetaUntil  = metaUntil
	MetaRecord = metaRecord
)
