package main

import (
	"fmt"
	"sort"
	"strings"
	"unicode"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
)

// maxDepth bounds the recursion through nested messages and Anys.
const maxDepth = 100

// walker visits every message of a resource depth first, unpacking each Any with the
// types linked into this binary (an unknown @type is a finding), running the generated
// ValidateAll() on the resource and on every unpacked Any (ValidateAll does not look
// inside an Any), and flagging unknown fields.
type walker struct {
	finding func(path, reason string)
	visit   func(path string, m proto.Message)
}

func joinPath(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	if strings.HasPrefix(b, "[") {
		return a + b
	}
	return a + "." + b
}

func (w *walker) root(m proto.Message) {
	w.validate("", m)
	w.walk("", m.ProtoReflect(), 0)
}

func (w *walker) validate(path string, m proto.Message) {
	v, ok := m.(interface{ ValidateAll() error })
	if !ok {
		return
	}
	if err := v.ValidateAll(); err != nil {
		flattenValidation(path, err, w.finding)
	}
}

func unknownFieldNumbers(b []byte) string {
	var nums []string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "unparsable"
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return "unparsable"
		}
		b = b[m:]
		nums = append(nums, fmt.Sprint(num))
	}
	return strings.Join(nums, ",")
}

func (w *walker) walk(path string, m protoreflect.Message, depth int) {
	if depth > maxDepth {
		w.finding(path, "messages nested too deep")
		return
	}
	if u := m.GetUnknown(); len(u) > 0 {
		w.finding(path, fmt.Sprintf("unknown field(s) %s of %s (not in Envoy's proto)",
			unknownFieldNumbers(u), m.Descriptor().FullName()))
	}
	msg := m.Interface()
	if a, ok := msg.(*anypb.Any); ok {
		w.any(path, a, depth)
		return
	}
	if w.visit != nil {
		w.visit(path, msg)
	}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		p := joinPath(path, string(fd.Name()))
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				continue
			}
			mp := m.Get(fd).Map()
			var keys []protoreflect.MapKey
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			sort.Slice(keys, func(a, b int) bool { return keys[a].String() < keys[b].String() })
			for _, k := range keys {
				w.walk(fmt.Sprintf("%s[%s]", p, k.String()), mp.Get(k).Message(), depth+1)
			}
		case fd.IsList():
			if fd.Message() == nil {
				continue
			}
			l := m.Get(fd).List()
			for j := 0; j < l.Len(); j++ {
				w.walk(fmt.Sprintf("%s[%d]", p, j), l.Get(j).Message(), depth+1)
			}
		case fd.Message() != nil:
			w.walk(p, m.Get(fd).Message(), depth+1)
		}
	}
}

func (w *walker) any(path string, a *anypb.Any, depth int) {
	if a.GetTypeUrl() == "" {
		w.finding(path, "Any without @type")
		return
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByURL(a.GetTypeUrl())
	if err != nil {
		w.finding(path, fmt.Sprintf("unknown @type %q", a.GetTypeUrl()))
		return
	}
	inner := mt.New().Interface()
	if err := proto.Unmarshal(a.GetValue(), inner); err != nil {
		w.finding(path, fmt.Sprintf("cannot decode %s: %v", a.GetTypeUrl(), err))
		return
	}
	w.validate(path, inner)
	w.walk(path, inner.ProtoReflect(), depth+1)
}

// pgvError is the interface of protoc-gen-validate's generated XxxValidationError.
type pgvError interface {
	Field() string
	Reason() string
	Cause() error
	Key() bool
}

// flattenValidation turns ValidateAll's tree (MultiError of ValidationError whose Cause is
// the nested message's MultiError ...) into one (field path, reason) per leaf.
func flattenValidation(prefix string, err error, out func(path, reason string)) {
	if me, ok := err.(interface{ AllErrors() []error }); ok {
		for _, e := range me.AllErrors() {
			flattenValidation(prefix, e, out)
		}
		return
	}
	ve, ok := err.(pgvError)
	if !ok {
		out(prefix, err.Error())
		return
	}
	p := joinPath(prefix, snakeField(ve.Field()))
	if c := ve.Cause(); c != nil {
		if _, multi := c.(interface{ AllErrors() []error }); multi {
			flattenValidation(p, c, out)
			return
		}
		if _, nested := c.(pgvError); nested {
			flattenValidation(p, c, out)
			return
		}
		out(p, ve.Reason()+": "+c.Error())
		return
	}
	reason := ve.Reason()
	if ve.Key() {
		reason = "map key: " + reason
	}
	out(p, reason)
}

// snakeField: "FilterChains[0]" -> "filter_chains[0]" (PGV names fields the Go way).
func snakeField(s string) string {
	var b strings.Builder
	inIndex := false
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == '[':
			inIndex = true
			b.WriteRune(r)
		case r == ']':
			inIndex = false
			b.WriteRune(r)
		case inIndex:
			b.WriteRune(r)
		case unicode.IsUpper(r):
			if i > 0 && rs[i-1] != '[' && rs[i-1] != '.' &&
				(unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) ||
					(i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
