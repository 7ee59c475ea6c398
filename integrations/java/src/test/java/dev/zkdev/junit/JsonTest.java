package dev.zkdev.junit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonTest {
  @Test
  void readsWhatZkdevPrints() {
    Object doc = Json.parse("{\"leader\": 3, \"epoch\": null, \"ok\": true, \"avg\": 5.8125,"
        + " \"nodes\": [{\"id\": 1, \"mode\": \"follower\"}], \"s\": \"a\\\"b\\u00e9\\n\"}");
    Map<?, ?> map = (Map<?, ?>) doc;
    assertEquals(3L, map.get("leader"));
    assertNull(map.get("epoch"));
    assertEquals(Boolean.TRUE, map.get("ok"));
    assertEquals(5.8125, map.get("avg"));
    assertEquals("follower", ((Map<?, ?>) ((List<?>) map.get("nodes")).get(0)).get("mode"));
    assertEquals("a\"b\u00e9\n", map.get("s"));
  }

  @Test
  void saysWhereTheDocumentIsBroken() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\": [1, }"));
    assertTrue(e.getMessage().contains("character 10"), e.getMessage());
  }

  @Test
  void aMissingFieldIsNamed() {
    ZkdevException e = assertThrows(ZkdevException.class,
        () -> Results.KillLeaderResult.from(Json.parse("{\"signal\": \"SIGKILL\"}")));
    assertTrue(e.getMessage().contains("`kill-leader.old_leader`"), e.getMessage());
  }
}
