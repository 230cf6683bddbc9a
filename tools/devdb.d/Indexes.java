// Indexes as MongoDB 4.4 and later treats them, where mongo-java-server
// 1.47.0 accepts anything: createIndexes checks each requested index against
// the collection's existing ones (and the ones before it in the same
// command) the way IndexCatalogImpl::_doesSpecConflictWithExisting does,
//
//   same name, other key                  -> 86 IndexKeySpecsConflict
//   same name and key, other options      -> 85 IndexOptionsConflict
//   same key (and partialFilterExpression
//   and collation), other name            -> 85 IndexOptionsConflict
//   identical                             -> nothing to do: ok, with the
//                                            note "all indexes already exist"
//
// and one conflict fails the whole command, before anything is built. A
// unique index with a partialFilterExpression is unique only among the
// documents the filter matches (PartialIndex, below); the filter takes what
// MongoDB 4.2 to 5.0 take, and is refused otherwise.
import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.backend.DefaultQueryMatcher;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.QueryMatcher;
import de.bwaldvogel.mongo.backend.Utils;
import de.bwaldvogel.mongo.bson.BsonRegularExpression;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.bson.Json;
import de.bwaldvogel.mongo.exception.KeyConstraintError;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import java.util.regex.Pattern;

final class Indexes {
    // The operators a partialFilterExpression may use on a field, as on
    // MongoDB 4.2 to 5.0 ($exists only with true); $and only at the top.
    private static final Set<String> FILTER_OPERATORS = Set.of("$eq", "$gt", "$gte", "$lt", "$lte", "$type", "$exists");

    // One createIndexes at a time: the check and the build are one step, so
    // that two clients cannot both pass the check with conflicting indexes.
    private final Object lock = new Object();

    /** createIndexes: `run` is the backend's own handling of the command. */
    Document createIndexes(Document query, DevDb.Backend backend, Supplier<Document> run) {
        Object collection = query.get("createIndexes");
        Object requested = query.get("indexes");
        if (!(collection instanceof String) || !(requested instanceof List)) {
            return run.get();  // malformed: the backend's own error
        }
        synchronized (lock) {
            List<Document> existing = list(backend, (String) collection);
            boolean createsCollection = existing.isEmpty();
            if (createsCollection) {
                // Created with the collection, before the requested ones.
                existing.add(new Document("v", 2).append("key", new Document("_id", 1)).append("name", "_id_"));
            }
            int before = existing.size();
            List<Document> build = new ArrayList<>();
            for (Object item : (List<?>) requested) {
                if (!(item instanceof Document)) {
                    return FailCommand.errorReply(14, "The 'indexes' field must be an array of index "
                        + "specifications (objects), but it has " + Json.toCompactJsonValue(item), null);
                }
                Document spec = (Document) item;
                Document refused = refuse(spec);
                if (refused == null) {
                    refused = conflict(spec, existing);
                }
                if (refused == IDENTICAL) {
                    continue;
                }
                if (refused != null) {
                    return refused;
                }
                build.add(spec);
                existing.add(spec);
            }
            if (build.isEmpty() && !createsCollection) {
                Document reply = new Document("numIndexesBefore", before);
                reply.put("numIndexesAfter", before);
                reply.put("note", "all indexes already exist");
                reply.put("ok", 1.0);
                return reply;
            }
            Document only = new Document(query);
            only.put("indexes", build);
            Document built = backend.run("createIndexes", only);
            if (!Utils.isTrue(built.get("ok"))) {
                return built;
            }
            // The backend counts the indexes of the whole database.
            Document reply = new Document("createdCollectionAutomatically", createsCollection);
            reply.put("numIndexesBefore", before);
            reply.put("numIndexesAfter", before + build.size());
            reply.put("ok", 1.0);
            return reply;
        }
    }

    /** The collection's indexes as listIndexes gives them; none if it does not exist. */
    private static List<Document> list(DevDb.Backend backend, String collection) {
        Document reply = backend.run("listIndexes", new Document("listIndexes", collection));
        Object cursor = reply.get("cursor");
        Object batch = cursor instanceof Document ? ((Document) cursor).get("firstBatch") : null;
        List<Document> indexes = new ArrayList<>();
        if (batch instanceof List) {
            for (Object index : (List<?>) batch) {
                if (index instanceof Document) {
                    indexes.add((Document) index);
                }
            }
        }
        return indexes;
    }

    private static final Document IDENTICAL = new Document();

    /** An error reply for a specification MongoDB refuses by itself, or null. */
    private static Document refuse(Document spec) {
        Object key = spec.get("key");
        if (key == null) {
            return FailCommand.errorReply(9, "The 'key' field is a required property of an index specification", null);
        }
        if (!(key instanceof Document) || ((Document) key).isEmpty()) {
            return FailCommand.errorReply(67, "Error in specification " + Json.toCompactJsonValue(spec)
                + " :: caused by :: Index keys cannot be empty.", null);
        }
        if (!(spec.get("name") instanceof String)) {
            return FailCommand.errorReply(9, "The 'name' field is a required property of an index specification", null);
        }
        Object filter = spec.get("partialFilterExpression");
        if (filter == null) {
            return null;
        }
        if (!(filter instanceof Document)) {
            return FailCommand.errorReply(67, "\"partialFilterExpression\" for an index must be a document", null);
        }
        if (Utils.isTrue(spec.get("sparse"))) {
            return FailCommand.errorReply(67, "cannot mix \"partialFilterExpression\" and \"sparse\" options", null);
        }
        String unsupported = unsupported((Document) filter, true);
        if (unsupported != null) {
            return FailCommand.errorReply(67, "Error in specification " + Json.toCompactJsonValue(spec)
                + " :: caused by :: Expression not supported in partial index: " + unsupported
                + " (the dev database takes what MongoDB 4.2 to 5.0 take: equality, $eq, $exists: true, $gt, $gte,"
                + " $lt, $lte and $type on fields, and $and at the top level)", null);
        }
        return null;
    }

    /** The part of `filter` a partial index may not use, or null. */
    private static String unsupported(Document filter, boolean top) {
        for (Map.Entry<String, Object> entry : filter.entrySet()) {
            String field = entry.getKey();
            Object value = entry.getValue();
            if (field.equals("$and") && top && value instanceof List) {
                for (Object clause : (List<?>) value) {
                    String inner = clause instanceof Document ? unsupported((Document) clause, false) : "$and";
                    if (inner != null) {
                        return inner;
                    }
                }
                continue;
            }
            if (field.startsWith("$")) {
                return field;
            }
            if (value instanceof BsonRegularExpression || value instanceof Pattern) {
                return field + " " + Json.toCompactJsonValue(value);
            }
            if (!(value instanceof Document) || !isOperators((Document) value)) {
                continue;  // equality
            }
            for (Map.Entry<String, Object> operator : ((Document) value).entrySet()) {
                String name = operator.getKey();
                if (!FILTER_OPERATORS.contains(name)
                    || (name.equals("$exists") && !Utils.isTrue(operator.getValue()))) {
                    return field + " " + name + " " + Json.toCompactJsonValue(operator.getValue());
                }
            }
        }
        return null;
    }

    private static boolean isOperators(Document value) {
        Iterator<String> keys = value.keySet().iterator();
        return keys.hasNext() && keys.next().startsWith("$");
    }

    /**
     * How `spec` meets the indexes in `existing`: null (a new index),
     * IDENTICAL (one of them) or the error reply of the conflict.
     */
    private static Document conflict(Document spec, List<Document> existing) {
        String name = (String) spec.get("name");
        Object key = spec.get("key");
        for (Document index : existing) {
            if (!name.equals(index.get("name"))) {
                continue;
            }
            if (!same(key, index.get("key"))) {
                return FailCommand.errorReply(86, "An existing index has the same name as the requested index. "
                    + "When index names are not specified, they are auto generated and can cause conflicts. "
                    + "Please refer to our documentation. Requested index: " + Json.toCompactJsonValue(spec)
                    + ", existing index: " + Json.toCompactJsonValue(index), null);
            }
            if (!sameOptions(spec, index)) {
                return FailCommand.errorReply(85, "Index with name: " + name + " already exists with different options",
                    null);
            }
            return IDENTICAL;
        }
        for (Document index : existing) {
            if (same(key, index.get("key"))
                && same(spec.get("partialFilterExpression"), index.get("partialFilterExpression"))
                && same(spec.get("collation"), index.get("collation"))) {
                return FailCommand.errorReply(85, "Index already exists with a different name: " + index.get("name"),
                    null);
            }
        }
        return null;
    }

    /** The options IndexDescriptor::compareIndexOptions looks at. */
    private static boolean sameOptions(Document a, Document b) {
        for (String flag : new String[] {"unique", "sparse", "hidden"}) {
            if (Utils.isTrue(a.get(flag)) != Utils.isTrue(b.get(flag))) {
                return false;
            }
        }
        return same(a.get("expireAfterSeconds"), b.get("expireAfterSeconds"))
            && same(a.get("partialFilterExpression"), b.get("partialFilterExpression"))
            && same(a.get("collation"), b.get("collation"));
    }

    /** BSON equality as the server compares specifications: numbers by value, fields in order. */
    private static boolean same(Object a, Object b) {
        if (a instanceof Number && b instanceof Number) {
            return ((Number) a).doubleValue() == ((Number) b).doubleValue();
        }
        if (a instanceof Document && b instanceof Document) {
            Document x = (Document) a;
            Document y = (Document) b;
            if (x.size() != y.size()) {
                return false;
            }
            Iterator<Map.Entry<String, Object>> i = x.entrySet().iterator();
            Iterator<Map.Entry<String, Object>> j = y.entrySet().iterator();
            while (i.hasNext()) {
                Map.Entry<String, Object> e = i.next();
                Map.Entry<String, Object> f = j.next();
                if (!e.getKey().equals(f.getKey()) || !same(e.getValue(), f.getValue())) {
                    return false;
                }
            }
            return true;
        }
        if (a instanceof List && b instanceof List) {
            List<?> x = (List<?>) a;
            List<?> y = (List<?>) b;
            if (x.size() != y.size()) {
                return false;
            }
            for (int k = 0; k < x.size(); k++) {
                if (!same(x.get(k), y.get(k))) {
                    return false;
                }
            }
            return true;
        }
        return a == null ? b == null : a.equals(b);
    }

    // ---- partial unique indexes ---------------------------------------------

    // The description of the index being added on this thread: the backend
    // tells openOrCreateUniqueIndex only the name, keys and sparse.
    private static final ThreadLocal<Document> ADDING = new ThreadLocal<>();

    /** Runs `add`, the backend's addIndex of `description`. */
    static void adding(Document description, Runnable add) {
        Document outer = ADDING.get();
        ADDING.set(description);
        try {
            add.run();
        } finally {
            ADDING.set(outer);
        }
    }

    /**
     * The unique index the backend made for index `inner.getName()` of
     * namespace `ns`, partial when its description has a
     * partialFilterExpression. The description is the one being added, or
     * for an index reopened from a data file, the one stored in `stored`
     * (the database's system.indexes).
     */
    static <P> Index<P> partial(Index<P> inner, String ns, Supplier<MongoCollection<P>> stored) {
        Document description = ADDING.get();
        if (description == null || !inner.getName().equals(description.get("name"))
            || !ns.equals(description.get("ns"))) {
            description = stored.get().handleQueryAsStream(new Document("ns", ns).append("name", inner.getName()))
                .findFirst().orElse(null);
        }
        Object filter = description != null ? description.get("partialFilterExpression") : null;
        return filter instanceof Document ? new PartialIndex<>(inner, (Document) filter) : inner;
    }

    /**
     * A unique index that holds only the documents its filter matches: the
     * others are never checked against it, nor is it used to answer
     * queries. It says it is sparse, so that the collection lets it
     * remove documents it never held.
     */
    private static final class PartialIndex<P> extends Index<P> {
        private static final QueryMatcher MATCHER = new DefaultQueryMatcher();

        private final Index<P> inner;
        private final Document filter;

        PartialIndex(Index<P> inner, Document filter) {
            super(inner.getName(), inner.getKeys(), true);
            this.inner = inner;
            this.filter = filter.cloneDeeply();
        }

        private boolean holds(Document document) {
            return MATCHER.matches(document, filter);
        }

        @Override
        public P getPosition(Document document) {
            return holds(document) ? inner.getPosition(document) : null;
        }

        @Override
        public void checkAdd(Document document, MongoCollection<P> collection) {
            if (holds(document)) {
                inner.checkAdd(document, collection);
            }
        }

        @Override
        public void add(Document document, P position, MongoCollection<P> collection) {
            if (holds(document)) {
                inner.add(document, position, collection);
            }
        }

        @Override
        public P remove(Document document) {
            return holds(document) ? inner.remove(document) : null;
        }

        @Override
        public boolean canHandle(Document query) {
            return false;  // it lacks the documents outside the filter
        }

        @Override
        public Iterable<P> getPositions(Document query) {
            throw new UnsupportedOperationException("a partial index answers no queries");
        }

        @Override
        public long getCount() {
            return inner.getCount();
        }

        @Override
        public boolean isEmpty() {
            return inner.isEmpty();
        }

        @Override
        public long getDataSize() {
            return inner.getDataSize();
        }

        @Override
        public void checkUpdate(Document oldDocument, Document newDocument, MongoCollection<P> collection) {
            if (!holds(newDocument)) {
                return;
            }
            if (holds(oldDocument)) {
                inner.checkUpdate(oldDocument, newDocument, collection);
            } else {
                inner.checkAdd(newDocument, collection);
            }
        }

        @Override
        public void updateInPlace(Document oldDocument, Document newDocument, P position,
                                  MongoCollection<P> collection) throws KeyConstraintError {
            boolean held = holds(oldDocument);
            boolean holds = holds(newDocument);
            if (held && holds) {
                inner.updateInPlace(oldDocument, newDocument, position, collection);
            } else if (held) {
                inner.remove(oldDocument);
            } else if (holds) {
                inner.add(newDocument, position, collection);
            }
        }

        @Override
        public void drop() {
            inner.drop();
        }

        @Override
        public boolean isUnique() {
            return inner.isUnique();
        }

        @Override
        public Document toIndexDescription() {
            Document description = inner.toIndexDescription();
            description.put("partialFilterExpression", filter);
            return description;
        }
    }
}
