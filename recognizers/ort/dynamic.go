package ort

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// each calls fn for every field of msg, in order.
func each(msg []byte, fn func(num protowire.Number, typ protowire.Type, raw []byte, val []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		raw := msg[:n+m]
		var val []byte
		if typ == protowire.BytesType {
			val, _ = protowire.ConsumeBytes(msg[n:])
		}
		if err := fn(num, typ, raw, val); err != nil {
			return err
		}
		msg = msg[n+m:]
	}
	return nil
}

// rewrite copies msg, replacing each length-delimited field num with sub(val) (nil drops it).
func rewrite(msg []byte, subs map[protowire.Number]func([]byte) ([]byte, error)) ([]byte, error) {
	out := make([]byte, 0, len(msg))
	err := each(msg, func(num protowire.Number, typ protowire.Type, raw, val []byte) error {
		f, ok := subs[num]
		if !ok || typ != protowire.BytesType {
			out = append(out, raw...)
			return nil
		}
		nv, err := f(val)
		if err != nil {
			return err
		}
		if nv == nil {
			return nil
		}
		out = protowire.AppendTag(out, num, protowire.BytesType)
		out = protowire.AppendBytes(out, nv)
		return nil
	})
	return out, err
}

func drop([]byte) ([]byte, error) { return nil, nil }

// Dynamic makes an image model's input height and width free: the first graph input's dims 2
// and 3 become named, every output's shape and all intermediate shapes are dropped.
func Dynamic(model []byte) ([]byte, error) {
	first := true
	dims := func(shape []byte) ([]byte, error) {
		i := 0
		return rewrite(shape, map[protowire.Number]func([]byte) ([]byte, error){1: func(dim []byte) ([]byte, error) {
			i++
			if i == 3 || i == 4 {
				name := map[int]string{3: "height", 4: "width"}[i]
				return protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), name), nil
			}
			return dim, nil
		}})
	}
	input := func(vi []byte) ([]byte, error) {
		if !first {
			return vi, nil
		}
		first = false
		return rewrite(vi, map[protowire.Number]func([]byte) ([]byte, error){2: func(tp []byte) ([]byte, error) {
			return rewrite(tp, map[protowire.Number]func([]byte) ([]byte, error){1: func(tt []byte) ([]byte, error) {
				return rewrite(tt, map[protowire.Number]func([]byte) ([]byte, error){2: dims})
			}})
		}})
	}
	output := func(vi []byte) ([]byte, error) {
		return rewrite(vi, map[protowire.Number]func([]byte) ([]byte, error){2: func(tp []byte) ([]byte, error) {
			return rewrite(tp, map[protowire.Number]func([]byte) ([]byte, error){1: func(tt []byte) ([]byte, error) {
				return rewrite(tt, map[protowire.Number]func([]byte) ([]byte, error){2: drop})
			}})
		}})
	}
	out, err := rewrite(model, map[protowire.Number]func([]byte) ([]byte, error){7: func(g []byte) ([]byte, error) {
		return rewrite(g, map[protowire.Number]func([]byte) ([]byte, error){11: input, 12: output, 13: drop})
	}})
	if err == nil && first {
		err = fmt.Errorf("onnx: the model has no graph input")
	}
	return out, err
}

// field returns the value of a message's length-delimited field num (the last one), nil if none.
func field(msg []byte, num protowire.Number) ([]byte, error) {
	var v []byte
	err := each(msg, func(n protowire.Number, typ protowire.Type, _, val []byte) error {
		if n == num && typ == protowire.BytesType {
			v = val
		}
		return nil
	})
	return v, err
}

// graphParts calls fn for each length-delimited field of the model's graph; false if it has none.
func graphParts(model []byte, fn func(num protowire.Number, val []byte) error) (bool, error) {
	found := false
	err := each(model, func(num protowire.Number, typ protowire.Type, _, g []byte) error {
		if num != 7 || typ != protowire.BytesType {
			return nil
		}
		found = true
		return each(g, func(num protowire.Number, typ protowire.Type, _, val []byte) error {
			if typ != protowire.BytesType {
				return nil
			}
			return fn(num, val)
		})
	})
	return found, err
}

// weights returns the names of the graph's initializers (TensorProto name: field 8).
func weights(model []byte) (map[string]bool, error) {
	names := map[string]bool{}
	_, err := graphParts(model, func(num protowire.Number, val []byte) error {
		if num != 5 {
			return nil
		}
		n, err := field(val, 8)
		names[string(n)] = n != nil
		return err
	})
	return names, err
}

// IO returns a model's input names (those that are not weights) and output names.
func IO(model []byte) (inputs, outputs []string, err error) {
	ws, err := weights(model)
	if err != nil {
		return nil, nil, err
	}
	found, err := graphParts(model, func(num protowire.Number, val []byte) error {
		if num != 11 && num != 12 {
			return nil
		}
		n, err := field(val, 1) // ValueInfoProto name
		switch {
		case err != nil:
		case num == 12:
			outputs = append(outputs, string(n))
		case !ws[string(n)]:
			inputs = append(inputs, string(n))
		}
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("onnx: no graph")
	}
	return inputs, outputs, err
}

// Constants drops from a model's graph inputs the weights listed there too (older exporters
// list every initializer as an input, which keeps ONNX Runtime from folding them as
// constants: remove_initializer_from_input.py's rewrite).
func Constants(model []byte) ([]byte, error) {
	ws, err := weights(model)
	if err != nil || len(ws) == 0 {
		return model, err
	}
	return rewrite(model, map[protowire.Number]func([]byte) ([]byte, error){7: func(g []byte) ([]byte, error) {
		return rewrite(g, map[protowire.Number]func([]byte) ([]byte, error){11: func(vi []byte) ([]byte, error) {
			name, err := field(vi, 1)
			if err != nil || ws[string(name)] {
				return nil, err
			}
			return vi, nil
		}})
	}})
}
