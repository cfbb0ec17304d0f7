// Package migrations holds the event store's schema changes (events, face embeddings, footage
// segments). storage/schema applies them in one order with every other domain's.
package migrations

import "embed"

// FS holds the *.sql files, each named VERSION_name.sql.
//
//go:embed *.sql
var FS embed.FS
