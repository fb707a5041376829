// Package chunker splits byte streams into content-defined chunks with keyed FastCDC.
package chunker
