// Package replicate copies a repository's stored objects to a second
// location (another region, bucket or provider) byte for byte: no
// decryption, no re-encryption. A host key is enough.
package replicate
