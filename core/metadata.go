package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pembadb/pemba/storage"
)

// Bounds of the metadata a write records in the audit log. They are fixed,
// not configurable: the log keeps every entry for good, and clients (an
// access-request system, say) need one rule on every server.
const (
	// MaxLabels is the most labels one write may carry.
	MaxLabels = 32
	// MaxLabelKeyLength is the most characters of a label key.
	MaxLabelKeyLength = 63
	// MaxLabelValueBytes is the most bytes of a label value.
	MaxLabelValueBytes = 256
	// MaxReasonBytes is the most bytes of a write's reason.
	MaxReasonBytes = 1024
)

// ValidateMetadata checks the reason and labels a client attached to a
// write: at most MaxReasonBytes of UTF-8 reason without control
// characters other than newline and tab, and labels as ValidateLabels
// wants them. Errors are FieldErrors naming "reason" or "labels[i].key".
func ValidateMetadata(meta storage.WriteMetadata) error {
	if err := validateReason(meta.Reason); err != nil {
		return Invalid(Field("reason"), err)
	}
	return ValidateLabels(meta.Labels, Field("labels"))
}

func validateReason(s string) error {
	if len(s) > MaxReasonBytes {
		return fmt.Errorf("%d bytes exceed the limit of %d", len(s), MaxReasonBytes)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return fmt.Errorf("contains the control character %U; only newlines and tabs are allowed", r)
		}
	}
	return nil
}

// ValidateLabels checks labels: at most MaxLabels; each key 1 to
// MaxLabelKeyLength characters of A-Z a-z 0-9 _ . - / starting with a
// letter or digit; each value at most MaxLabelValueBytes of UTF-8 without
// control characters. Keys may repeat. Errors are FieldErrors naming
// field (the list) or its element's key or value: {"labels[2]", "key"}.
func ValidateLabels(labels []storage.Label, field Path) error {
	if len(labels) > MaxLabels {
		return Invalid(field, fmt.Errorf("%d labels exceed the limit of %d per request", len(labels), MaxLabels))
	}
	for i, l := range labels {
		elem := field.Index(i)
		if err := validateLabelKey(l.Key); err != nil {
			return Invalid(elem.Child("key"), err)
		}
		if err := validateLabelValue(l.Value); err != nil {
			return Invalid(elem.Child("value"), err)
		}
	}
	return nil
}

func validateLabelKey(k string) error {
	if k == "" {
		return errors.New("empty")
	}
	if len(k) > MaxLabelKeyLength {
		return fmt.Errorf("%d characters exceed the limit of %d", len(k), MaxLabelKeyLength)
	}
	if !isAlnum(k[0]) {
		return fmt.Errorf("%q must start with a letter or digit", k)
	}
	for _, r := range k {
		if r >= utf8.RuneSelf || !isAlnum(byte(r)) && !strings.ContainsRune("_.-/", r) {
			return fmt.Errorf("%q: %q is not allowed; a key is letters, digits and _ . - /", k, r)
		}
	}
	return nil
}

func validateLabelValue(v string) error {
	if len(v) > MaxLabelValueBytes {
		return fmt.Errorf("%d bytes exceed the limit of %d", len(v), MaxLabelValueBytes)
	}
	if !utf8.ValidString(v) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("contains the control character %U", r)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// LabelsFromMap turns a JSON object of metadata (SpiceDB's transaction
// metadata, say) into labels, one per key in key order: a string value as
// it is, any other value as its JSON text. The labels must pass
// ValidateLabels; errors name field, or field.key for one entry.
func LabelsFromMap(m map[string]any, field Path) ([]storage.Label, error) {
	if len(m) > MaxLabels {
		return nil, Invalid(field, fmt.Errorf("%d entries exceed the limit of %d labels per request", len(m), MaxLabels))
	}
	out := make([]storage.Label, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v, ok := m[k].(string)
		if !ok {
			j, err := json.Marshal(m[k])
			if err != nil {
				return nil, Invalid(field.Child(k), fmt.Errorf("value: %w", err))
			}
			v = string(j)
		}
		if err := validateLabelKey(k); err != nil {
			return nil, Invalid(field.Child(k), fmt.Errorf("key: %w", err))
		}
		if err := validateLabelValue(v); err != nil {
			return nil, Invalid(field.Child(k), err)
		}
		out = append(out, storage.Label{Key: k, Value: v})
	}
	return out, nil
}
