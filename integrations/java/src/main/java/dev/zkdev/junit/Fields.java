package dev.zkdev.junit;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Reads one object of a zkdev {@code --json} document: a field it does not know is ignored, a field it needs
 * that is missing is an error that names it.
 */
final class Fields {
  private final Map<String, Object> map;
  private final String where;

  @SuppressWarnings("unchecked")
  Fields(Object doc, String where) {
    if (!(doc instanceof Map)) {
      throw new ZkdevException("zkdev's output: `" + where + "` should be an object, is " + doc);
    }
    this.map = (Map<String, Object>) doc;
    this.where = where;
  }

  Map<String, Object> raw() {
    return map;
  }

  private Object need(String key) {
    if (!map.containsKey(key)) {
      throw new ZkdevException("zkdev's output has no field `" + where + "." + key + "` (this extension needs it)");
    }
    return map.get(key);
  }

  String str(String key) {
    Object v = need(key);
    if (!(v instanceof String)) {
      throw new ZkdevException("zkdev's output: `" + where + "." + key + "` should be a string, is " + v);
    }
    return (String) v;
  }

  String strOrNull(String key) {
    Object v = map.get(key);
    return v == null ? null : v.toString();
  }

  long num(String key) {
    Object v = need(key);
    if (!(v instanceof Number)) {
      throw new ZkdevException("zkdev's output: `" + where + "." + key + "` should be a number, is " + v);
    }
    return ((Number) v).longValue();
  }

  Long numOrNull(String key) {
    Object v = map.get(key);
    return v instanceof Number ? ((Number) v).longValue() : null;
  }

  Integer intOrNull(String key) {
    Long v = numOrNull(key);
    return v == null ? null : v.intValue();
  }

  boolean bool(String key) {
    return Boolean.TRUE.equals(need(key));
  }

  Fields obj(String key) {
    return new Fields(need(key), where + "." + key);
  }

  Fields objOrNull(String key) {
    Object v = map.get(key);
    return v == null ? null : new Fields(v, where + "." + key);
  }

  <T> List<T> list(String key, Function<Object, T> each) {
    Object v = need(key);
    if (!(v instanceof List)) {
      throw new ZkdevException("zkdev's output: `" + where + "." + key + "` should be a list, is " + v);
    }
    List<T> out = new ArrayList<>();
    for (Object item : (List<?>) v) {
      out.add(each.apply(item));
    }
    return out;
  }

  List<Integer> ints(String key) {
    return list(key, o -> ((Number) o).intValue());
  }

  List<String> strings(String key) {
    return list(key, String::valueOf);
  }
}
