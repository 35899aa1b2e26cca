package graph

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// String returns `type:id`.
func (o ObjectRef) String() string { return o.Type + ":" + o.ID }

// String returns `type:id`, `type:id#relation` or `type:*`; the ellipsis is
// written as nothing.
func (s SubjectRef) String() string {
	if s.Relation == "" {
		return s.Object.String()
	}
	return s.Object.Type + ":" + s.Object.ID + "#" + s.Relation
}

// String returns the relationship in the syntax ParseRelationship reads:
// canonical, so equal relationships format identically (caveat context keys
// sorted, expiration in UTC with trailing fractional zeros trimmed).
func (r Relationship) String() string {
	size := len(r.Resource.Type) + len(r.Resource.ID) + len(r.Relation) +
		len(r.Subject.Object.Type) + len(r.Subject.Object.ID) + len(r.Subject.Relation) + 6
	if r.Caveat != nil {
		size += len(r.Caveat.Name) + 2
	}
	if r.Expiration != nil {
		size += len("[expiration:]") + len(time.RFC3339Nano)
	}
	var b strings.Builder
	b.Grow(size)
	r.Key().write(&b)
	if r.Caveat != nil {
		b.WriteByte('[')
		b.WriteString(r.Caveat.Name)
		if len(r.Caveat.Context) > 0 {
			b.WriteByte(':')
			b.WriteString(formatContext(r.Caveat.Context))
		}
		b.WriteByte(']')
	}
	if r.Expiration != nil {
		b.WriteString("[" + expirationBlock + ":")
		var buf [len(time.RFC3339Nano) + 8]byte
		b.Write(appendExpiration(buf[:0], *r.Expiration))
		b.WriteByte(']')
	}
	return b.String()
}

// appendExpiration writes t in UTC, RFC 3339 with only the fractional digits
// needed.
func appendExpiration(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, time.RFC3339Nano)
}

// formatContext writes a caveat context as compact JSON with sorted keys
// (encoding/json sorts map keys) and without HTML escaping, which only makes
// the text harder to read. A context JSON cannot encode (NaN, a channel) is
// written as an invalid block, so it cannot be mistaken for a valid one;
// Validate rejects such contexts.
func formatContext(ctx map[string]any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ctx); err != nil {
		return "<unencodable context: " + err.Error() + ">"
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
