//! Counting in words for messages: "1 node", "3 nodes", "nodes 1, 2 and 4".

/// `n` and the noun, singular for exactly one: `count(1, "client")` is "1 client", `count(3, "client")`
/// "3 clients". A noun whose plural is not noun+s is given as `"singular|plural"`.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {}", noun_for(n, noun))
}

/// The noun alone, in the number `n` asks for (`"singular|plural"` or a noun that takes an s).
pub fn noun_for(n: usize, noun: &str) -> String {
    match noun.split_once('|') {
        Some((one, many)) => if n == 1 { one } else { many }.to_string(),
        None if n == 1 => noun.to_string(),
        None => format!("{noun}s"),
    }
}

/// Ids as a person lists them: "3", "1 and 2", "1, 2 and 4"; "none" when empty.
pub fn and_list<T: std::fmt::Display>(items: &[T]) -> String {
    match items {
        [] => "none".to_string(),
        [one] => one.to_string(),
        [rest @ .., last] => format!(
            "{} and {last}",
            rest.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// "node 3" or "nodes 1, 2 and 4".
pub fn nodes(ids: &[u32]) -> String {
    format!("{} {}", noun_for(ids.len(), "node"), and_list(ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_lists_read_as_words() {
        assert_eq!(count(1, "client"), "1 client");
        assert_eq!(count(0, "client"), "0 clients");
        assert_eq!(count(2, "observer"), "2 observers");
        assert_eq!(count(1, "entry|entries"), "1 entry");
        assert_eq!(count(4, "entry|entries"), "4 entries");
        assert_eq!(and_list::<u32>(&[]), "none");
        assert_eq!(and_list(&[3]), "3");
        assert_eq!(and_list(&[1, 2]), "1 and 2");
        assert_eq!(and_list(&[1, 2, 4]), "1, 2 and 4");
        assert_eq!(nodes(&[1]), "node 1");
        assert_eq!(nodes(&[1, 3]), "nodes 1 and 3");
    }
}
