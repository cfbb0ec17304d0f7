// Package migrations holds the dispatch domain's schema changes (alert acknowledgements,
// dispatches, officers' positions, the site map). storage/schema applies them in one order with
// every other domain's.
package migrations

import "embed"

// FS holds the *.sql files, each named VERSION_name.sql.
//
//go:embed *.sql
var FS embed.FS
